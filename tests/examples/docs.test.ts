/**
 * The README and the component pages cite code: every relative link must point at an existing file,
 * and every link of the form [`name`](path.ts) must name something that file exports (a function,
 * class, const, type or interface), so renaming a function without fixing the docs fails here.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../cli/helpers.js';

const componentDir = join(ROOT, 'docs', 'components');
const PAGES = [
  join(ROOT, 'README.md'),
  join(ROOT, 'docs', 'README.md'),
  ...readdirSync(componentDir)
    .filter((f) => f.endsWith('.md'))
    .map((f) => join(componentDir, f)),
];

/** Markdown links [text](target) outside code blocks, with external and in-page links dropped. */
function relativeLinks(markdown: string): { text: string; target: string }[] {
  const prose = markdown.replace(/```[\s\S]*?```/g, '');
  const out: { text: string; target: string }[] = [];
  for (const m of prose.matchAll(/\[([^\]]*)\]\(([^)\s]+)\)/g)) {
    const target = m[2]!;
    if (/^[a-z]+:/i.test(target) || target.startsWith('#')) continue;
    out.push({ text: m[1]!, target: target.replace(/#.*$/, '') });
  }
  return out;
}

describe('documentation links', () => {
  for (const page of PAGES) {
    const name = relative(ROOT, page);
    const links = relativeLinks(readFileSync(page, 'utf8'));

    it(`${name}: every relative link resolves to a file or directory`, () => {
      const missing = links.filter((l) => !existsSync(join(dirname(page), l.target))).map((l) => l.target);
      expect(missing).toEqual([]);
    });

    const codeLinks = links.filter((l) => /^`[A-Za-z_$][\w$]*`$/.test(l.text) && l.target.endsWith('.ts'));
    if (codeLinks.length > 0) {
      it(`${name}: every [\`name\`](file.ts) link names an export of that file`, () => {
        const wrong: string[] = [];
        for (const l of codeLinks) {
          const file = join(dirname(page), l.target);
          if (!existsSync(file)) continue; // reported by the test above
          const ident = l.text.slice(1, -1);
          const src = readFileSync(file, 'utf8');
          const declared = new RegExp(`export\\s+(?:declare\\s+)?(?:async\\s+)?(?:abstract\\s+)?(?:function\\*?|class|const|let|type|interface)\\s+${ident}\\b`);
          if (!declared.test(src)) wrong.push(`${ident} → ${l.target}`);
        }
        expect(wrong).toEqual([]);
      });
    }
  }
});
