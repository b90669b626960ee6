/** Types of bin/entry.mjs (plain JavaScript: the `engage` wrapper runs before tsx is loaded). */
export declare function cliEntry(root: string): { kind: 'dist' | 'src'; args: string[] };
