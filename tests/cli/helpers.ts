/**
 * Runs the built `dsv3` (dist/cli/main.js) as a subprocess. The CLI is tested as users run it,
 * so the TypeScript must be compiled first: `ensureBuilt()` runs `tsc -p tsconfig.build.json`
 * when dist/cli/main.js is missing or older than any file under src/ (a directory lock keeps
 * parallel test files from building at the same time).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const MAIN = join(ROOT, 'dist', 'cli', 'main.js');

function newestMtime(dir: string): number {
  let m = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    m = Math.max(m, e.isDirectory() ? newestMtime(p) : statSync(p).mtimeMs);
  }
  return m;
}

function upToDate(): boolean {
  return existsSync(MAIN) && statSync(MAIN).mtimeMs >= newestMtime(join(ROOT, 'src'));
}

/** Compiles src/ to dist/ unless dist/cli/main.js is newer than every source file. */
export async function ensureBuilt(): Promise<void> {
  const lock = join(ROOT, 'dist', '.cli-test-build.lock');
  mkdirSync(join(ROOT, 'dist'), { recursive: true });
  for (let i = 0; i < 600; i++) {
    if (upToDate()) return;
    try {
      mkdirSync(lock);
    } catch {
      await new Promise((r) => setTimeout(r, 200)); // another test file is building
      continue;
    }
    try {
      if (!upToDate()) {
        try {
          execFileSync(process.execPath, [join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(ROOT, 'tsconfig.build.json')], { cwd: ROOT, stdio: 'pipe' });
        } catch (e) {
          // tsc still emits when other files have type errors; the CLI needs only its own imports
          if (!existsSync(MAIN)) throw e;
        }
      }
      return;
    } finally {
      rmSync(lock, { recursive: true, force: true });
    }
  }
  throw new Error('timed out waiting for the dist build lock');
}

/** Result of one `dsv3` run. */
export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `node dist/cli/main.js ...args` (stderr is not a TTY, so progress bars are off). */
export function dsv3(args: string[], opts: { cwd?: string; timeout?: number } = {}): CliRun {
  const r = spawnSync(process.execPath, [MAIN, ...args], { cwd: opts.cwd ?? ROOT, encoding: 'utf8', timeout: opts.timeout ?? 120_000 });
  if (r.error) throw r.error;
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}
