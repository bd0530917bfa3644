/** Types of scripts/build.mjs, for the tests that bundle the CLI as the build does. */
import type { BuildResult } from 'esbuild';

export declare const GENERATED_VALIDATORS: string[];
export declare function bundleCli(options: { entry: string; outdir: string }): Promise<BuildResult<{ metafile: true }>>;
