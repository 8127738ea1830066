// Regenerates data/tiny-corpus.txt: a small English-like corpus with learnable structure for the
// `tiny` training preset (byte-level, vocab 256). Deterministic: same output on every machine.
// Run: node data/generate-corpus.mjs
import { writeFileSync } from 'node:fs';

// xorshift32: integer-only, portable
let state = 0x2545f491;
function rand() {
  state ^= state << 13;
  state >>>= 0;
  state ^= state >>> 17;
  state ^= state << 5;
  state >>>= 0;
  return state / 4294967296;
}
const pick = (xs) => xs[Math.floor(rand() * xs.length)];

const names = ['Ada', 'Boris', 'Clara', 'Dmitri', 'Elena', 'Farid', 'Grace', 'Hugo', 'Ines', 'Jonas', 'Kira', 'Liam'];
const animals = ['cat', 'dog', 'fox', 'owl', 'horse', 'rabbit', 'goat', 'crow', 'bear', 'mouse'];
const places = ['the river', 'the old mill', 'the market', 'the forest', 'the library', 'the harbour', 'the hill', 'the garden'];
const adjectives = ['small', 'quiet', 'clever', 'tired', 'brave', 'curious', 'hungry', 'gentle'];
const verbsPast = [['walked to', 'place'], ['looked at', 'thing'], ['found', 'thing'], ['carried', 'thing'], ['painted', 'thing'], ['visited', 'place']];
const things = ['a red box', 'a blue kite', 'an old map', 'a wooden spoon', 'a heavy stone', 'a silver key', 'a green apple', 'a paper boat'];
const weathers = ['rain', 'sun', 'wind', 'snow', 'fog'];
const numberWords = ['zero', 'one', 'two', 'three', 'four', 'five', 'six', 'seven', 'eight', 'nine', 'ten', 'eleven', 'twelve'];

function storySentence() {
  const who = pick(names);
  const [verb, kind] = pick(verbsPast);
  const obj = kind === 'place' ? pick(places) : pick(things);
  switch (Math.floor(rand() * 5)) {
    case 0:
      return `${who} ${verb} ${obj}.`;
    case 1:
      return `The ${pick(adjectives)} ${pick(animals)} ${verb} ${obj}.`;
    case 2:
      return `In the ${pick(weathers)}, ${who} ${verb} ${obj} with the ${pick(animals)}.`;
    case 3: {
      const n = 2 + Math.floor(rand() * 9);
      return `${who} counted ${numberWords[n]} ${pick(animals)}s near ${pick(places)}.`;
    }
    default:
      return `"Where is ${pick(things)}?" asked ${who}. "Near ${pick(places)}," said ${pick(names)}.`;
  }
}

function arithmeticLine() {
  const a = Math.floor(rand() * 10);
  const b = Math.floor(rand() * 10);
  return rand() < 0.5 ? `${a} + ${b} = ${a + b}.` : `${numberWords[Math.min(a, 12)]} plus ${numberWords[Math.min(b, 12)]} is ${a + b}.`;
}

function countingLine() {
  const start = Math.floor(rand() * 20);
  const len = 4 + Math.floor(rand() * 5);
  return Array.from({ length: len }, (_, i) => String(start + i)).join(', ') + '.';
}

const paragraphs = [];
let size = 0;
let chapter = 1;
while (size < 120_000) {
  const lines = [];
  if (paragraphs.length % 12 === 0) lines.push(`Chapter ${chapter++}.`);
  const kind = rand();
  const n = 3 + Math.floor(rand() * 4);
  for (let i = 0; i < n; i++) lines.push(kind < 0.7 ? storySentence() : kind < 0.85 ? arithmeticLine() : countingLine());
  const p = lines.join(' ');
  paragraphs.push(p);
  size += p.length + 2;
}
const text = paragraphs.join('\n\n') + '\n';
writeFileSync(new URL('./tiny-corpus.txt', import.meta.url), text);
console.log(`wrote data/tiny-corpus.txt: ${Buffer.byteLength(text)} bytes`);
