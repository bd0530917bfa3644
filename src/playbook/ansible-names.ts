/**
 * Names Ansible has and provision does not (yet): a playbook that uses one is refused by name, saying so,
 * rather than as a typo ("unknown module").
 */

/** Modules of ansible.builtin and common collections that provision does not implement. */
export const UNSUPPORTED_MODULES = new Set([
  'get_url', 'uri', 'apt_key', 'apt_repository', 'yum_repository',
  'rpm_key', 'dnf5', 'mount', 'git', 'pip', 'unarchive', 'fetch', 'script', 'raw', 'find', 'wait_for', 'wait_for_connection',
  'pause', 'package_facts', 'service_facts', 'setup', 'gather_facts', 'slurp', 'tempfile', 'assemble', 'ini_file',
  'known_hosts', 'authorized_key', 'hostname', 'timezone', 'selinux', 'seboolean', 'sefcontext', 'firewalld', 'ufw',
  'synchronize', 'reboot', 'getent', 'group_by', 'add_host', 'alternatives', 'locale_gen', 'modprobe', 'iptables_state',
  'expect', 'async_status', 'dpkg_selections', 'sysvinit', 'openssl_privatekey', 'openssl_csr',
  'x509_certificate', 'openssl_dhparam', 'mysql_user', 'mysql_db', 'postgresql_user', 'postgresql_db', 'validate_argument_spec',
  'import_module', 'win_shell', 'win_command', 'lvg', 'lvol', 'filesystem', 'parted', 'pam_limits', 'capabilities', 'acl',
  'archive', 'make', 'htpasswd', 'docker_container', 'zypper', 'apk', 'pacman', 'snap', 'homebrew', 'npm', 'gem',
]);

/** Task keywords Ansible has and provision does not, with what to do instead. */
export const UNSUPPORTED_TASK_KEYWORDS = new Map<string, string>([
  ['async', 'async tasks are not supported yet'],
  ['poll', 'async tasks (poll) are not supported yet'],
  ['throttle', 'throttle is not supported yet (use serial or --forks)'],
  ['module_defaults', 'module_defaults is not supported yet'],
  ['debugger', 'the task debugger is not supported'],
  ['collections', 'collections search paths are not supported yet (name modules in full: ansible.builtin.copy)'],
  ['timeout', 'task timeout is not supported yet'],
  ['action', 'the "action:" form is not supported yet; name the module as the key'],
  ['local_action', 'local_action is not supported yet; use the module with delegate_to: localhost'],
  ['any_errors_fatal', 'any_errors_fatal is a play keyword in provision, not a task keyword'],
  ['ignore_unreachable', 'ignore_unreachable is not supported yet'],
  ['vars_files', 'vars_files is a play keyword; in a task use include_vars'],
]);

/** Play keywords Ansible has and provision does not. */
export const UNSUPPORTED_PLAY_KEYWORDS = new Map<string, string>([
  ['strategy', 'strategy is not supported yet (provision runs each host through its tasks like the "free" strategy within a batch)'],
  ['vars_prompt', 'vars_prompt is not supported yet (use --extra-vars)'],
  ['module_defaults', 'module_defaults is not supported yet'],
  ['force_handlers', 'force_handlers is not supported yet'],
  ['gather_subset', 'gather_subset is not supported (facts are always the same small set)'],
  ['gather_timeout', 'gather_timeout is not supported'],
  ['collections', 'collections search paths are not supported yet (name modules in full)'],
  ['ignore_errors', 'ignore_errors on a play is not supported yet (set it on tasks or blocks)'],
  ['ignore_unreachable', 'ignore_unreachable is not supported yet'],
  ['throttle', 'throttle is not supported yet (use serial or --forks)'],
  ['debugger', 'the task debugger is not supported'],
  ['check_mode', 'check_mode on a play is not supported yet (set it on tasks, or use provision check)'],
  ['diff', 'diff on a play is not supported yet (use --diff)'],
  ['no_log', 'no_log on a play is not supported yet (set it on tasks)'],
  ['remote_user', 'remote_user on a play is not supported yet (use ansible_user or -u)'],
  ['port', 'port on a play is not supported yet (use ansible_port)'],
  ['become_method', 'become_method is not supported (provision becomes with sudo)'],
  ['become_flags', 'become_flags is not supported'],
  ['run_once', 'run_once is a task keyword'],
]);

/** Ansible's loop lookups that provision implements as `with_<name>`. */
export const WITH_LOOPS = new Set(['items', 'list', 'dict', 'fileglob', 'together', 'sequence', 'subelements', 'nested', 'first_found']);
