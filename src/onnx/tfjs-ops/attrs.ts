// Readers for TF node attributes and tensor references, shared by the converter and its op handlers.
import type { TfjsAttr, TfjsNodeDef } from '../tfjs-artifacts.js';

const decodeB64 = (s: string | undefined): string => (s ? Buffer.from(s, 'base64').toString('utf8') : '');
export const attrString = (n: TfjsNodeDef, key: string): string => decodeB64(n.attr?.[key]?.s);
export const attrInts = (n: TfjsNodeDef, key: string): number[] => (n.attr?.[key]?.list?.i ?? []).map(Number);
export const attrStrings = (n: TfjsNodeDef, key: string): string[] => (n.attr?.[key]?.list?.s ?? []).map(decodeB64);
export const attrBool = (n: TfjsNodeDef, key: string): boolean => n.attr?.[key]?.b === true;
export const attrFloat = (n: TfjsNodeDef, key: string, dflt: number): number => n.attr?.[key]?.f ?? dflt;
export const attrInt = (n: TfjsNodeDef, key: string, dflt: number): number =>
  n.attr?.[key]?.i !== undefined ? Number(n.attr[key]!.i) : dflt;

export function shapeOf(a: TfjsAttr | undefined): (number | string)[] {
  return (a?.shape?.dim ?? []).map((d) => Number(d.size));
}

/** TF tensor reference "node", "node:1" or "^node" (control). */
export function parseRef(ref: string): { node: string; index: number; control: boolean } {
  if (ref.startsWith('^')) return { node: ref.slice(1), index: 0, control: true };
  const m = /^(.*):(\d+)$/.exec(ref);
  return m ? { node: m[1]!, index: Number(m[2]), control: false } : { node: ref, index: 0, control: false };
}
