/** Types of bin/node-flags.mjs (plain JavaScript: the `engage` wrapper runs before tsx is loaded). */
export declare const SEMI_SPACE_DEFAULT_MB: number;
export declare function stageNodeFlags(command: string | undefined, env: Record<string, string | undefined>): string[];
