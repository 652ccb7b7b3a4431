// Merges two ONNX models into one graph (e.g. a frozen encoder feeding a task head), wiring named tensors together.
import { InvalidInputError, NotFoundError } from '../core/errors.js';
import { onnx, type GraphProto, type ModelProto, type NodeProto, type AttributeProto, type ValueInfoProto } from './proto.js';
import { GraphIndex, extractSubgraph, withGraph } from './subgraph.js';

export interface MergeOptions {
  /** Pairs `[firstTensor, secondInput]`: each listed graph input of `second` is fed by that tensor of `first`. At least one. */
  connect: readonly (readonly [string, string])[];
  /** Prepended to every other tensor and node name of `second` so nothing collides with `first`. Default 'head/'. '' keeps names as they are (a collision is then an error). */
  prefix2?: string;
  /**
   * Extra graph outputs, named as in the merged graph: `first`'s tensors as they are, `second`'s with the prefix.
   * The merged outputs are `second`'s outputs (prefixed) followed by these. Default: none.
   */
  outputs?: readonly string[];
}

export const defaultMergeOptions = { prefix2: 'head/' } as const;

/**
 * Ops whose inputs or attributes changed shape at the listed default-domain opset versions, so a node written for an
 * older opset either fails to load or computes something else under a newer one (attribute moved to an input, default
 * axis changed). Raising a model's opset across one of these versions is refused rather than silently miscomputed.
 */
const breakingOpsetChanges: Readonly<Record<string, readonly number[]>> = {
  Slice: [10],
  TopK: [10],
  Upsample: [10],
  Pad: [11],
  Clip: [11],
  Resize: [11],
  Dropout: [12],
  Squeeze: [13],
  Unsqueeze: [13],
  ReduceSum: [13],
  Split: [13],
  Softmax: [13],
  LogSoftmax: [13],
  Hardmax: [13],
  ReduceMean: [18],
  ReduceMax: [18],
  ReduceMin: [18],
  ReduceProd: [18],
  ReduceL1: [18],
  ReduceL2: [18],
  ReduceLogSum: [18],
  ReduceLogSumExp: [18],
  ReduceSumSquare: [18],
  GroupNormalization: [21],
};

function isDefaultDomain(domain: string | null | undefined): boolean {
  return !domain || domain === 'ai.onnx';
}

function defaultOpset(model: ModelProto): number {
  const entry = (model.opsetImport ?? []).find((o) => isDefaultDomain(o.domain));
  return entry ? Number(entry.version ?? 0) : 0;
}

function forEachNode(graph: GraphProto, visit: (node: NodeProto) => void): void {
  for (const node of graph.node ?? []) {
    visit(node);
    for (const a of node.attribute ?? []) for (const g of [a.g, ...(a.graphs ?? [])]) if (g) forEachNode(g, visit);
  }
}

/** Refuses to run `model` (written for its own opset) under `target` when one of its ops changed meaning in between. */
function assertOpsetUpgradeSafe(model: ModelProto, label: string, target: number): void {
  const from = defaultOpset(model);
  if (from >= target) return;
  const offending = new Set<string>();
  forEachNode(model.graph ?? {}, (node) => {
    if (!isDefaultDomain(node.domain)) return;
    const changes = breakingOpsetChanges[node.opType ?? ''];
    if (changes?.some((v) => v > from && v <= target)) offending.add(node.opType ?? '');
  });
  if (offending.size > 0) {
    throw new InvalidInputError(
      `cannot merge: the ${label} model uses opset ${from} and its ${[...offending].join(', ')} node(s) changed inputs or semantics by opset ${target}; re-export it at opset ${target}`,
    );
  }
}

/** Every opset domain at the higher of the two versions; '' and 'ai.onnx' are the same domain. */
function mergeOpsets(first: ModelProto, second: ModelProto): { domain: string; version: number }[] {
  const versions = new Map<string, number>();
  for (const o of [...(first.opsetImport ?? []), ...(second.opsetImport ?? [])]) {
    const domain = isDefaultDomain(o.domain) ? '' : o.domain!;
    versions.set(domain, Math.max(versions.get(domain) ?? 0, Number(o.version ?? 0)));
  }
  return [...versions].map(([domain, version]) => ({ domain, version }));
}

/** Every tensor and node name a graph defines or reads, nested control-flow bodies included. */
function allNames(graph: GraphProto, into = new Set<string>()): Set<string> {
  for (const v of [...(graph.input ?? []), ...(graph.output ?? []), ...(graph.valueInfo ?? [])]) if (v.name) into.add(v.name);
  for (const t of graph.initializer ?? []) if (t.name) into.add(t.name);
  for (const s of graph.sparseInitializer ?? []) if (s.values?.name) into.add(s.values.name);
  for (const node of graph.node ?? []) {
    if (node.name) into.add(node.name);
    for (const n of [...(node.input ?? []), ...(node.output ?? [])]) if (n) into.add(n);
    for (const a of node.attribute ?? []) for (const g of [a.g, ...(a.graphs ?? [])]) if (g) allNames(g, into);
  }
  return into;
}

/** A copy of `graph` with every tensor and node name passed through `rename` ('' stays '': it marks an absent optional input). */
function renameGraph(graph: GraphProto, rename: (name: string) => string): GraphProto {
  const r = (n: string | null | undefined): string => (n ? rename(n) : '');
  const renameInfo = (v: ValueInfoProto): ValueInfoProto => ({ ...v, name: r(v.name) });
  const renameAttr = (a: AttributeProto): AttributeProto => {
    if (!a.g && !(a.graphs && a.graphs.length > 0)) return a;
    return {
      ...a,
      ...(a.g ? { g: renameGraph(a.g, rename) } : {}),
      ...(a.graphs ? { graphs: a.graphs.map((g) => renameGraph(g, rename)) } : {}),
    };
  };
  return {
    ...graph,
    node: (graph.node ?? []).map((node) => ({
      ...node,
      ...(node.name ? { name: rename(node.name) } : {}),
      input: (node.input ?? []).map(r),
      output: (node.output ?? []).map(r),
      attribute: (node.attribute ?? []).map(renameAttr),
    })),
    initializer: (graph.initializer ?? []).map((t) => ({ ...t, name: r(t.name) })),
    sparseInitializer: (graph.sparseInitializer ?? []).map((s) => ({
      ...s,
      ...(s.values ? { values: { ...s.values, name: r(s.values.name) } } : {}),
    })),
    input: (graph.input ?? []).map(renameInfo),
    output: (graph.output ?? []).map(renameInfo),
    valueInfo: (graph.valueInfo ?? []).map(renameInfo),
    // Annotations name tensors by string; renaming them keeps quantisation metadata attached to the right tensor.
    quantizationAnnotation: (graph.quantizationAnnotation ?? []).map((q) => ({ ...q, tensorName: r(q.tensorName) })),
  };
}

function uniqueByName(infos: ValueInfoProto[]): ValueInfoProto[] {
  const seen = new Set<string>();
  return infos.filter((v) => !!v.name && !seen.has(v.name) && !!seen.add(v.name));
}

function validateConnections(
  firstIndex: GraphIndex,
  secondIndex: GraphIndex,
  second: GraphProto,
  connect: MergeOptions['connect'],
): Map<string, string> {
  if (!Array.isArray(connect) || connect.length === 0) {
    throw new InvalidInputError('mergeModels: connect must list at least one [firstOutputName, secondInputName] pair');
  }
  const feeds = new Map<string, string>();
  for (const pair of connect) {
    if (!Array.isArray(pair) || pair.length !== 2 || typeof pair[0] !== 'string' || typeof pair[1] !== 'string') {
      throw new InvalidInputError(
        `mergeModels: each connection must be a [firstOutputName, secondInputName] pair, got ${JSON.stringify(pair)}`,
      );
    }
    const [from, to] = pair;
    if (feeds.has(to)) throw new InvalidInputError(`mergeModels: second-model input "${to}" is connected twice`);
    feeds.set(to, from);
  }
  firstIndex.requireAll([...new Set(feeds.values())], 'first-model tensor(s)', 'first');
  const graphInputs = new Set((second.input ?? []).map((v) => v.name));
  const notInputs = [...feeds.keys()].filter((n) => !graphInputs.has(n));
  if (notInputs.length > 0) {
    const known = (second.input ?? []).map((v) => `"${v.name}"`).join(', ');
    throw new NotFoundError(
      `mergeModels: ${notInputs.map((n) => `"${n}"`).join(', ')} is not a graph input of the second model (its inputs: ${known})`,
    );
  }
  for (const [to, from] of feeds) {
    const fromType = firstIndex.knownElemType(from);
    const toType = secondIndex.knownElemType(to);
    if (fromType !== undefined && toType !== undefined && fromType !== toType) {
      const typeName = (t: number) => onnx.TensorProto.DataType[t] ?? String(t);
      throw new InvalidInputError(
        `mergeModels: "${from}" is ${typeName(fromType)} but second-model input "${to}" expects ${typeName(toType)}`,
      );
    }
  }
  return feeds;
}

/**
 * One model in which `second`'s connected inputs read `first`'s tensors. Every other name of `second` gets
 * `prefix2`; its unconnected inputs become graph inputs. Opsets are the higher of the two per domain (refused where
 * an op of the older model would change meaning). Nodes, initializers and inputs that feed none of the outputs
 * (typically `first`'s own head) are pruned.
 */
export function mergeModels(first: ModelProto, second: ModelProto, options: MergeOptions): ModelProto {
  if (!first.graph || !second.graph) throw new InvalidInputError('mergeModels: both models need a graph');
  const prefix = options.prefix2 ?? defaultMergeOptions.prefix2;
  const firstGraph = first.graph;
  const secondGraph = second.graph;
  const firstIndex = new GraphIndex(firstGraph);
  const feeds = validateConnections(firstIndex, new GraphIndex(secondGraph), secondGraph, options.connect);

  const opsetImport = mergeOpsets(first, second);
  const target = Number(opsetImport.find((o) => o.domain === '')?.version ?? 0);
  assertOpsetUpgradeSafe(first, 'first', target);
  assertOpsetUpgradeSafe(second, 'second', target);

  // A connected input is fed from `first` now: it leaves the graph inputs, and so does any default initializer it had.
  const secondToWire: GraphProto = {
    ...secondGraph,
    input: (secondGraph.input ?? []).filter((v) => !feeds.has(v.name ?? '')),
    initializer: (secondGraph.initializer ?? []).filter((t) => !feeds.has(t.name ?? '')),
  };
  const renamed = renameGraph(secondToWire, (n) => feeds.get(n) ?? `${prefix}${n}`);
  const firstNames = allNames(firstGraph);
  const fed = new Set(feeds.values());
  const clashes = [...allNames(renamed)].filter((n) => firstNames.has(n) && !fed.has(n));
  if (clashes.length > 0) {
    throw new InvalidInputError(
      `mergeModels: prefix "${prefix}" leaves name(s) ${clashes
        .slice(0, 5)
        .map((n) => `"${n}"`)
        .join(', ')} in both models; choose another prefix2`,
    );
  }

  const secondOutputs = (renamed.output ?? []).map((v) => v.name!);
  const outputs = [...new Set([...secondOutputs, ...(options.outputs ?? [])])];
  // The first model's outputs become intermediate values; keep their declared types and shapes as value infos.
  const firstOutputsAsValues = (firstGraph.output ?? []).filter((v) => v.name && !(firstGraph.input ?? []).some((i) => i.name === v.name));
  const mergedGraph: GraphProto = {
    name: `${firstGraph.name ?? 'first'}+${secondGraph.name ?? 'second'}`,
    node: [...(firstGraph.node ?? []), ...(renamed.node ?? [])],
    initializer: [...(firstGraph.initializer ?? []), ...(renamed.initializer ?? [])],
    sparseInitializer: [...(firstGraph.sparseInitializer ?? []), ...(renamed.sparseInitializer ?? [])],
    input: [...(firstGraph.input ?? []), ...(renamed.input ?? [])],
    output: renamed.output ?? [],
    valueInfo: uniqueByName([...(firstGraph.valueInfo ?? []), ...firstOutputsAsValues, ...(renamed.valueInfo ?? [])]),
    quantizationAnnotation: [...(firstGraph.quantizationAnnotation ?? []), ...(renamed.quantizationAnnotation ?? [])],
  };

  const header = withGraph(first, mergedGraph);
  header.opsetImport = opsetImport.map((o) => onnx.OperatorSetIdProto.create(o));
  header.irVersion = Math.max(Number(first.irVersion ?? 0), Number(second.irVersion ?? 0));
  const metadataKeys = new Set((first.metadataProps ?? []).map((m) => m.key));
  header.metadataProps = [
    ...header.metadataProps,
    ...(second.metadataProps ?? []).filter((m) => !metadataKeys.has(m.key)).map((m) => onnx.StringStringEntryProto.create(m)),
  ];
  const functionKeys = new Set((first.functions ?? []).map((f) => `${f.domain ?? ''}:${f.name ?? ''}`));
  header.functions = [
    ...header.functions,
    ...(second.functions ?? []).filter((f) => !functionKeys.has(`${f.domain ?? ''}:${f.name ?? ''}`)),
  ];

  const mergedIndex = new GraphIndex(mergedGraph);
  mergedIndex.requireAll(options.outputs ?? [], 'requested output(s)', 'merged');
  return extractSubgraph(header, { outputs });
}
