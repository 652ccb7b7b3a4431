// Lists every function in src (not src/gen), bench and scripts by line count; exits 1 when one is over the limit.
// Usage: node scripts/function-lengths.mjs [limit=80] [--top N]
// Uses the TypeScript compiler's parser only (no type check), so it runs in about a second.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const root = fileURLToPath(new URL('..', import.meta.url));
const roots = ['src', 'bench', 'scripts'];
const excluded = new Set(['src/gen']);
const extensions = /\.(ts|mts|cts|js|mjs|cjs)$/;

const args = process.argv.slice(2);
const topIndex = args.indexOf('--top');
const top = topIndex >= 0 ? Number(args.splice(topIndex, 2)[1]) : 25;
const limit = args[0] === undefined ? 80 : Number(args[0]);
if (!Number.isInteger(limit) || limit <= 0 || !Number.isInteger(top) || top < 0) {
  console.error('usage: node scripts/function-lengths.mjs [limit=80] [--top N]');
  process.exit(2);
}

/** Source files under a folder, skipping excluded folders and declaration files. */
function listFiles(dir) {
  const files = [];
  for (const name of readdirSync(join(root, dir)).sort()) {
    const path = `${dir}/${name}`;
    if (excluded.has(path)) continue;
    if (statSync(join(root, path)).isDirectory()) files.push(...listFiles(path));
    else if (extensions.test(name) && !name.endsWith('.d.ts')) files.push(path);
  }
  return files;
}

/** A readable name for a function node: its own name, or the variable, property or call it belongs to. */
function functionName(node) {
  const own = node.name && ts.isIdentifier(node.name) ? node.name.text : node.name?.getText();
  const className = (n) => (n && (ts.isClassDeclaration(n) || ts.isClassExpression(n)) ? (n.name?.text ?? '<class>') : undefined);
  if (ts.isConstructorDeclaration(node)) return `${className(node.parent) ?? '<class>'}.constructor`;
  if (ts.isMethodDeclaration(node) || ts.isGetAccessor(node) || ts.isSetAccessor(node)) {
    const owner = className(node.parent) ?? ownerOfObjectLiteral(node.parent);
    return owner ? `${owner}.${own}` : own;
  }
  if (own) return own;
  const parent = node.parent;
  if (ts.isVariableDeclaration(parent) || ts.isPropertyAssignment(parent) || ts.isPropertyDeclaration(parent)) {
    const owner = ts.isPropertyDeclaration(parent) ? className(parent.parent) : ownerOfObjectLiteral(parent.parent);
    const name = parent.name.getText();
    return owner ? `${owner}.${name}` : name;
  }
  if (ts.isCallExpression(parent)) return `<callback of ${parent.expression.getText().slice(0, 40)}>`;
  return '<anonymous>';
}

/** The variable or property an object literal is assigned to, for names like `handlers.Conv2D`. */
function ownerOfObjectLiteral(node) {
  if (!node || !ts.isObjectLiteralExpression(node)) return undefined;
  let parent = node.parent;
  while (parent && (ts.isAsExpression(parent) || ts.isSatisfiesExpression(parent) || ts.isParenthesizedExpression(parent)))
    parent = parent.parent;
  if (parent && (ts.isVariableDeclaration(parent) || ts.isPropertyAssignment(parent))) return parent.name.getText();
  return undefined;
}

const rows = [];
for (const file of roots.flatMap((dir) => listFiles(dir))) {
  const text = readFileSync(join(root, file), 'utf8');
  const source = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true);
  const visit = (node) => {
    if (ts.isFunctionLike(node) && 'body' in node && node.body) {
      const start = source.getLineAndCharacterOfPosition(node.getStart(source)).line + 1;
      const end = source.getLineAndCharacterOfPosition(node.getEnd()).line + 1;
      rows.push({ name: functionName(node), place: `${relative(root, join(root, file))}:${start}-${end}`, lines: end - start + 1 });
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
}

rows.sort((a, b) => b.lines - a.lines || a.place.localeCompare(b.place));
const over = rows.filter((row) => row.lines > limit);
const format = (row) => `${String(row.lines).padStart(5)}  ${row.name}  ${row.place}`;
console.log(`${rows.length} functions in ${roots.join(', ')} (src/gen excluded); ${over.length} over ${limit} lines`);
for (const row of rows.slice(0, Math.max(top, over.length))) console.log(format(row));
if (over.length > 0) {
  console.error(`\n${over.length} function(s) over ${limit} lines:`);
  for (const row of over) console.error(format(row));
  process.exit(1);
}
