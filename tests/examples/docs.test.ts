/**
 * The README and the documentation pages cite code and the specification:
 * - every relative link must point at an existing file, and at a file the npm package ships (the
 *   tarball holds what its pages link to);
 * - every link of the form [`name`](path.ts) must name something that file exports (a function,
 *   class, const, type or interface), so renaming a function without fixing the docs fails here;
 * - every citation of the specification is a link into docs/spec.md whose anchor exists
 *   ([spec §3.8](spec.md#s3.8)); a bare "SPEC §x.y" in prose (code aside) fails.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../cli/helpers.js';

/** Every .md file under `dir` (docs/api, the generated TypeDoc output, excluded). */
function markdownUnder(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    if (statSync(p).isDirectory()) return p === join(ROOT, 'docs', 'api') ? [] : markdownUnder(p);
    return f.endsWith('.md') ? [p] : [];
  });
}

const PAGES = [
  join(ROOT, 'README.md'),
  ...markdownUnder(join(ROOT, 'docs')),
  ...['data/README.md', 'tests/fixtures/golden/README.md', 'tests/fixtures/gpu/README.md'].map((p) => join(ROOT, p)).filter((p) => existsSync(p)),
];
const SPEC = join(ROOT, 'docs', 'spec.md');
const SPEC_ANCHORS = new Set([...readFileSync(SPEC, 'utf8').matchAll(/<a id="([^"]+)"><\/a>/g)].map((m) => m[1]!));

/** Markdown text outside fenced code blocks. */
const prose = (markdown: string): string => markdown.replace(/```[\s\S]*?```/g, '');

/** Markdown links [text](target) outside code blocks, external links dropped; in-page links keep an empty path. */
function relativeLinks(markdown: string): { text: string; path: string; anchor: string }[] {
  const out: { text: string; path: string; anchor: string }[] = [];
  for (const m of prose(markdown).matchAll(/\[([^\]]*)\]\(([^)\s]+)\)/g)) {
    const target = m[2]!;
    if (/^[a-z]+:/i.test(target)) continue;
    const [path, anchor = ''] = target.split('#') as [string, string?];
    out.push({ text: m[1]!, path, anchor });
  }
  return out;
}

/** Files of the npm tarball (`npm pack --dry-run`, scripts skipped), relative to the root. */
function packedFiles(): Set<string> {
  const out = execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  return new Set((JSON.parse(out) as { files: { path: string }[] }[])[0]!.files.map((f) => f.path));
}

describe('documentation links', () => {
  it('the page list covers the README, docs/ and docs/components/ (and docs/spec.md has its section anchors)', () => {
    const names = PAGES.map((p) => relative(ROOT, p));
    expect(names).toContain('docs/spec.md');
    expect(names).toContain('docs/components/router.md');
    for (const s of ['s0', 's1.4', 's3.8', 's6.7', 's7', 's8.1']) expect(SPEC_ANCHORS.has(s), s).toBe(true);
  });

  for (const page of PAGES) {
    const name = relative(ROOT, page);
    const markdown = readFileSync(page, 'utf8');
    const links = relativeLinks(markdown).filter((l) => l.path !== '');

    it(`${name}: every relative link resolves to a file or directory`, () => {
      const missing = links.filter((l) => !existsSync(join(dirname(page), l.path))).map((l) => l.path);
      expect(missing).toEqual([]);
    });

    it(`${name}: spec citations are links into docs/spec.md with an existing anchor`, () => {
      const bare = [...prose(markdown).replace(/`[^`\n]*`/g, '').matchAll(/.{0,30}\bSPEC\b.{0,30}/g)].map((m) => m[0]);
      expect(bare, 'write [spec §x.y](…/docs/spec.md#sx.y), not SPEC').toEqual([]);
      const wrong: string[] = [];
      for (const l of relativeLinks(markdown)) {
        const intoSpec = l.path === '' ? page === SPEC : resolve(dirname(page), l.path) === SPEC;
        const cited = /^spec §(\d+(?:\.\d+)*)/.exec(l.text);
        if (cited !== null && !(intoSpec && l.anchor === `s${cited[1]}`)) wrong.push(`${l.text} → ${l.path}#${l.anchor}`);
        if (intoSpec && l.anchor !== '' && !SPEC_ANCHORS.has(l.anchor)) wrong.push(`${l.text} → #${l.anchor} (no such anchor)`);
      }
      expect(wrong).toEqual([]);
    });

    const codeLinks = links.filter((l) => /^`[A-Za-z_$][\w$]*`$/.test(l.text) && l.path.endsWith('.ts'));
    if (codeLinks.length > 0) {
      it(`${name}: every [\`name\`](file.ts) link names an export of that file`, () => {
        const wrong: string[] = [];
        for (const l of codeLinks) {
          const file = join(dirname(page), l.path);
          if (!existsSync(file)) continue; // reported by the test above
          const ident = l.text.slice(1, -1);
          const src = readFileSync(file, 'utf8');
          const declared = new RegExp(`export\\s+(?:declare\\s+)?(?:async\\s+)?(?:abstract\\s+)?(?:function\\*?|class|const|let|type|interface)\\s+${ident}\\b`);
          if (!declared.test(src)) wrong.push(`${ident} → ${l.path}`);
        }
        expect(wrong).toEqual([]);
      });
    }
  }

  it('the npm package ships every page and every file a shipped page links to', () => {
    const packed = packedFiles();
    const packedDirs = new Set([...packed].flatMap((f) => f.split('/').slice(0, -1).map((_, i, parts) => parts.slice(0, i + 1).join('/'))));
    const missing: string[] = [];
    for (const page of PAGES) {
      const name = relative(ROOT, page);
      if (!packed.has(name)) continue; // e.g. tests/fixtures/gpu/README.md if it is not shipped: its links need not be
      for (const l of relativeLinks(readFileSync(page, 'utf8'))) {
        if (l.path === '') continue;
        const target = relative(ROOT, resolve(dirname(page), l.path)).replace(/\/$/, '');
        if (!packed.has(target) && !packedDirs.has(target)) missing.push(`${name} → ${target}`);
      }
    }
    expect(missing).toEqual([]);
    for (const f of ['LICENSE', 'README.md', 'docs/spec.md', 'examples/dump_pytorch_activations.py', 'benchmarks/run.mjs']) expect(packed.has(f), f).toBe(true);
  });
});
