// Graph surgery on ONNX models: cut a subgraph between named tensors, expose intermediate tensors as outputs, list tensors.
import { InvalidInputError, ModelFormatError, NotFoundError } from '../core/errors.js';
import { onnx, DataType, type GraphProto, type ModelProto, type NodeProto, type TensorProto, type ValueInfoProto } from './proto.js';

type SparseTensorProto = NonNullable<GraphProto['sparseInitializer']>[number];

/** TensorProto.DataType codes the type rules below name. */
const INT64 = DataType.INT64;
const BOOL = DataType.BOOL;
const FLOAT = DataType.FLOAT;
const UINT8 = DataType.UINT8;

export interface ExtractOptions {
  /** Tensors where the cut stops: they become graph inputs, whatever computed them before. Default: none (the original graph inputs). */
  inputs?: readonly string[];
  /** Tensors to compute; they become exactly the graph outputs, in this order. */
  outputs: readonly string[];
}

export interface TensorListing {
  /** The tensor name, as used by `extractSubgraph` and `addOutputs`. */
  name: string;
  /** Op type of the producing node (domain-qualified when not the default domain, e.g. `com.microsoft.FusedConv`). */
  opType: string;
  /** Name of the producing node ('' when the node is anonymous). */
  nodeName: string;
}

/**
 * Name lookups over one graph: who produces each tensor, which are initializers and inputs, and the
 * element type of every tensor (declared where the graph says so, inferred otherwise).
 */
export class GraphIndex {
  readonly graph: GraphProto;
  readonly nodes: readonly NodeProto[];
  /** Tensor name -> index in `nodes` of the node that produces it. */
  readonly producer = new Map<string, number>();
  readonly initializers = new Map<string, TensorProto>();
  /** Sparse initializers by their values' name; kept opaque, only carried along. */
  readonly sparseInitializers = new Map<string, SparseTensorProto>();
  readonly inputs = new Map<string, ValueInfoProto>();
  readonly outputs = new Map<string, ValueInfoProto>();
  /** Every declared value info (valueInfo, then outputs, then inputs: the later one wins where both exist). */
  readonly declared = new Map<string, ValueInfoProto>();
  private elemTypes: Map<string, number> | undefined;

  constructor(graph: GraphProto) {
    this.graph = graph;
    this.nodes = graph.node ?? [];
    this.nodes.forEach((node, i) => {
      for (const out of node.output ?? []) if (out) this.producer.set(out, i);
    });
    for (const t of graph.initializer ?? []) if (t.name) this.initializers.set(t.name, t);
    for (const s of graph.sparseInitializer ?? []) if (s.values?.name) this.sparseInitializers.set(s.values.name, s);
    for (const v of graph.input ?? []) if (v.name) this.inputs.set(v.name, v);
    for (const v of graph.output ?? []) if (v.name) this.outputs.set(v.name, v);
    for (const list of [graph.valueInfo, graph.output, graph.input]) for (const v of list ?? []) if (v.name) this.declared.set(v.name, v);
  }

  /** True for any name a consumer could read: a node output, an initializer or a graph input. */
  has(name: string): boolean {
    return this.producer.has(name) || this.initializers.has(name) || this.sparseInitializers.has(name) || this.inputs.has(name);
  }

  /** Throws a NotFoundError naming every unknown tensor, so a typo list is reported at once. */
  requireAll(names: readonly string[], role: string, modelLabel = 'model'): void {
    const missing = names.filter((n) => !this.has(n));
    if (missing.length === 0) return;
    const hint = this.suggest(missing[0]!);
    throw new NotFoundError(
      `${role} ${missing.map((n) => `"${n}"`).join(', ')} not found in ${modelLabel} graph "${this.graph.name ?? ''}"${hint ? ` (did you mean "${hint}"?)` : ''}`,
    );
  }

  /** Element type code of a tensor: declared type, initializer type, or inferred from its producer; float32 when nothing says otherwise. */
  elemType(name: string): number {
    return this.knownElemType(name) ?? FLOAT;
  }

  /** Like `elemType` but undefined where neither a declaration nor the op rules say. */
  knownElemType(name: string): number | undefined {
    return this.declaredElemType(name) ?? this.inferredElemTypes().get(name);
  }

  /**
   * A value info usable as a graph output or input: the declared one when it carries an element type
   * (shape included), else the element type alone with an unknown shape, which ONNX Runtime accepts.
   */
  valueInfo(name: string): ValueInfoProto {
    const known = this.declared.get(name);
    if (known?.type?.tensorType?.elemType) return { ...known, name };
    const init = this.initializers.get(name);
    if (init?.dataType)
      return { name, type: { tensorType: { elemType: init.dataType, shape: { dim: (init.dims ?? []).map((d) => ({ dimValue: d })) } } } };
    return { name, type: { tensorType: { elemType: this.elemType(name) } } };
  }

  private declaredElemType(name: string): number | undefined {
    const declared = this.declared.get(name)?.type?.tensorType?.elemType;
    if (declared) return declared;
    const init = this.initializers.get(name)?.dataType;
    if (init) return init;
    return this.sparseInitializers.get(name)?.values?.dataType ?? undefined;
  }

  /** One forward pass in node order (ONNX requires topological order), so no recursion on deep graphs. */
  private inferredElemTypes(): Map<string, number> {
    if (this.elemTypes) return this.elemTypes;
    const types = new Map<string, number>();
    const typeOf = (n: string | undefined): number | undefined => (n ? (this.declaredElemType(n) ?? types.get(n)) : undefined);
    for (const node of this.nodes) {
      const outs = node.output ?? [];
      outs.forEach((out, i) => {
        if (!out || this.declaredElemType(out)) return;
        const t = outputElemType(node, i, typeOf);
        if (t) types.set(out, t);
      });
    }
    this.elemTypes = types;
    return types;
  }

  private suggest(name: string): string | undefined {
    const lower = name.toLowerCase();
    const all = [...this.producer.keys(), ...this.initializers.keys(), ...this.inputs.keys()];
    return (
      all.find((n) => n.toLowerCase() === lower) ??
      all.find((n) => n.toLowerCase().endsWith(`/${lower}`) || lower.endsWith(`/${n.toLowerCase()}`))
    );
  }
}

/** Output element type of the common ONNX ops whose result type is not simply that of their first input. */
function outputElemType(node: NodeProto, outputIndex: number, typeOf: (n: string | undefined) => number | undefined): number | undefined {
  const inputs = node.input ?? [];
  const attrOf = (name: string) => (node.attribute ?? []).find((a) => a.name === name);
  const isDefaultDomain = !node.domain || node.domain === 'ai.onnx';
  if (isDefaultDomain) {
    switch (node.opType) {
      case 'Cast':
        return Number(attrOf('to')?.i ?? 0) || undefined;
      case 'CastLike':
        return typeOf(inputs[1]);
      case 'Shape':
      case 'Size':
      case 'NonZero':
      case 'ArgMax':
      case 'ArgMin':
        return INT64;
      case 'Equal':
      case 'Less':
      case 'Greater':
      case 'LessOrEqual':
      case 'GreaterOrEqual':
      case 'Not':
      case 'And':
      case 'Or':
      case 'Xor':
      case 'IsNaN':
      case 'IsInf':
        return BOOL;
      case 'TopK':
        return outputIndex === 1 ? INT64 : typeOf(inputs[0]);
      case 'MaxPool':
        return outputIndex === 1 ? INT64 : typeOf(inputs[0]);
      case 'Dropout':
        return outputIndex === 1 ? BOOL : typeOf(inputs[0]);
      case 'Unique':
        return outputIndex === 0 ? typeOf(inputs[0]) : INT64;
      case 'Where':
        return typeOf(inputs[1]);
      case 'DequantizeLinear':
        return FLOAT;
      case 'QuantizeLinear':
        return typeOf(inputs[2]) ?? UINT8;
      case 'Constant': {
        const value = attrOf('value');
        if (value?.t?.dataType) return value.t.dataType;
        if (attrOf('value_float') || attrOf('value_floats')) return FLOAT;
        if (attrOf('value_int') || attrOf('value_ints')) return INT64;
        return undefined;
      }
      case 'ConstantOfShape':
        return attrOf('value')?.t?.dataType ?? FLOAT;
      case 'EyeLike':
      case 'RandomNormalLike':
      case 'RandomUniformLike':
      case 'Multinomial':
        return Number(attrOf('dtype')?.i ?? 0) || typeOf(inputs[0]);
      case 'RandomNormal':
      case 'RandomUniform':
        return Number(attrOf('dtype')?.i ?? 0) || FLOAT;
    }
  }
  // Most ops (element-wise, Conv, MatMul, Reshape, Gather, Concat, pooling, Softmax...) keep their data input's type.
  return typeOf(inputs.find((n) => n !== ''));
}

/**
 * Tensors a node reads, including the outer-scope names its control-flow subgraphs (If/Loop/Scan bodies)
 * capture implicitly: without them a cut would drop a producer that a branch still needs.
 */
export function nodeDependencies(node: NodeProto): string[] {
  const deps = (node.input ?? []).filter((n) => n !== '');
  for (const a of node.attribute ?? []) {
    for (const g of [a.g, ...(a.graphs ?? [])]) if (g) deps.push(...outerScopeNames(g));
  }
  return deps;
}

function outerScopeNames(graph: GraphProto): string[] {
  const local = new Set<string>();
  for (const v of graph.input ?? []) if (v.name) local.add(v.name);
  for (const t of graph.initializer ?? []) if (t.name) local.add(t.name);
  for (const n of graph.node ?? []) for (const o of n.output ?? []) if (o) local.add(o);
  const outer = new Set<string>();
  for (const n of graph.node ?? []) for (const d of nodeDependencies(n)) if (!local.has(d)) outer.add(d);
  for (const v of graph.output ?? []) if (v.name && !local.has(v.name)) outer.add(v.name);
  return [...outer];
}

function requireGraph(model: ModelProto): GraphProto {
  if (!model.graph) throw new ModelFormatError('model has no graph');
  return model.graph;
}

function uniqueNames(names: readonly string[], role: string): string[] {
  const seen = new Set<string>();
  for (const n of names) {
    if (typeof n !== 'string' || n === '') throw new InvalidInputError(`${role}: tensor names must be non-empty strings`);
    if (seen.has(n)) throw new InvalidInputError(`${role}: "${n}" is listed twice`);
    seen.add(n);
  }
  return [...seen];
}

/**
 * A model with the same header as `model` (IR version, opsets, producer, metadata, local functions) and a new graph.
 * Arrays are fresh, so editing the result never edits the source; tensors are shared since nothing here mutates them.
 */
export function withGraph(model: ModelProto, graph: GraphProto): ModelProto {
  return onnx.ModelProto.create({
    irVersion: model.irVersion,
    opsetImport: (model.opsetImport ?? []).map((o) => ({ ...o })),
    producerName: model.producerName,
    producerVersion: model.producerVersion,
    domain: model.domain,
    modelVersion: model.modelVersion,
    docString: model.docString,
    graph,
    metadataProps: (model.metadataProps ?? []).map((m) => ({ ...m })),
    functions: [...(model.functions ?? [])],
    trainingInfo: [],
  });
}

function copyNode(node: NodeProto): NodeProto {
  return { ...node, input: [...(node.input ?? [])], output: [...(node.output ?? [])], attribute: [...(node.attribute ?? [])] };
}

/**
 * The part of `model` that computes `outputs`: walks back from each output and stops at the cut `inputs`,
 * the graph inputs and the initializers. Unused nodes, initializers and graph inputs are dropped; graph
 * outputs become exactly `outputs`. Graph inputs are the cut inputs (in the order given, even if unused,
 * so callers get the interface they asked for) followed by the original graph inputs the cut still reads.
 */
export function extractSubgraph(model: ModelProto, options: ExtractOptions): ModelProto {
  const graph = requireGraph(model);
  const outputs = uniqueNames(options.outputs ?? [], 'extractSubgraph outputs');
  if (outputs.length === 0) throw new InvalidInputError('extractSubgraph: at least one output tensor is required');
  const cutInputs = uniqueNames(options.inputs ?? [], 'extractSubgraph inputs');
  const index = new GraphIndex(graph);
  index.requireAll(cutInputs, 'input tensor(s)');
  index.requireAll(outputs, 'output tensor(s)');

  const cut = new Set(cutInputs);
  const keptNodes = new Set<number>();
  const keptInitializers = new Set<string>();
  const keptGraphInputs = new Set<string>();
  const visited = new Set<string>();
  const pending = [...outputs];
  while (pending.length > 0) {
    const name = pending.pop()!;
    if (visited.has(name)) continue;
    visited.add(name);
    if (cut.has(name)) continue;
    const producer = index.producer.get(name);
    if (producer !== undefined) {
      if (!keptNodes.has(producer)) {
        keptNodes.add(producer);
        pending.push(...nodeDependencies(index.nodes[producer]!));
      }
    } else if (index.initializers.has(name) || index.sparseInitializers.has(name)) {
      keptInitializers.add(name);
      // Pre-IR-4 models list initializers as graph inputs too; keep that pairing so the default still applies.
      if (index.inputs.has(name)) keptGraphInputs.add(name);
    } else if (index.inputs.has(name)) {
      keptGraphInputs.add(name);
    } else {
      throw new ModelFormatError(`tensor "${name}" is read but never produced, initialized or declared as a graph input`);
    }
  }
  if (keptNodes.size === 0) {
    throw new InvalidInputError(
      `extractSubgraph: outputs ${outputs.map((n) => `"${n}"`).join(', ')} need no computation (they are inputs or initializers)`,
    );
  }

  const nodes = index.nodes.filter((_, i) => keptNodes.has(i)).map(copyNode);
  const produced = new Set(nodes.flatMap((n) => n.output ?? []));
  // A multi-output node (Split, TopK...) kept for a sibling output would define a cut input a second time.
  const redefined = cutInputs.filter((n) => produced.has(n));
  if (redefined.length > 0) {
    throw new InvalidInputError(
      `extractSubgraph: input(s) ${redefined.map((n) => `"${n}"`).join(', ')} would still be computed by a node the outputs need; cut at its other outputs too`,
    );
  }
  const outputSet = new Set(outputs);
  const inputs = [
    ...cutInputs.map((n) => index.valueInfo(n)),
    ...(graph.input ?? []).filter((v) => v.name && keptGraphInputs.has(v.name) && !cut.has(v.name)),
  ];
  const newGraph: GraphProto = {
    name: graph.name ?? 'subgraph',
    node: nodes,
    initializer: (graph.initializer ?? []).filter((t) => t.name && keptInitializers.has(t.name) && !cut.has(t.name)),
    sparseInitializer: (graph.sparseInitializer ?? []).filter(
      (s) => s.values?.name && keptInitializers.has(s.values.name) && !cut.has(s.values.name),
    ),
    input: inputs,
    output: outputs.map((n) => index.valueInfo(n)),
    // Shapes of the tensors still computed inside are worth keeping for tools and ORT's planner.
    valueInfo: (graph.valueInfo ?? []).filter((v) => v.name && produced.has(v.name) && !outputSet.has(v.name)),
    ...(graph.docString ? { docString: graph.docString } : {}),
  };
  return withGraph(model, newGraph);
}

/** `model` with intermediate tensors also exposed as graph outputs (existing outputs first, duplicates ignored). */
export function addOutputs(model: ModelProto, names: readonly string[]): ModelProto {
  const graph = requireGraph(model);
  const requested = uniqueNames(names, 'addOutputs');
  const index = new GraphIndex(graph);
  index.requireAll(requested, 'tensor(s)');
  const existing = graph.output ?? [];
  const added = requested.filter((n) => !index.outputs.has(n)).map((n) => index.valueInfo(n));
  const addedNames = new Set(added.map((v) => v.name));
  return withGraph(model, {
    ...graph,
    node: (graph.node ?? []).map(copyNode),
    initializer: [...(graph.initializer ?? [])],
    input: [...(graph.input ?? [])],
    output: [...existing, ...added],
    // A tensor is declared once: as an output now, no longer as an intermediate value.
    valueInfo: (graph.valueInfo ?? []).filter((v) => !addedNames.has(v.name)),
  });
}

/** Every tensor produced by a node, in graph order, with its producer: what a tool shows to choose a cut point. */
export function listTensors(model: ModelProto): TensorListing[] {
  const graph = requireGraph(model);
  const listing: TensorListing[] = [];
  for (const node of graph.node ?? []) {
    const opType = node.domain && node.domain !== 'ai.onnx' ? `${node.domain}.${node.opType ?? ''}` : (node.opType ?? '');
    for (const out of node.output ?? []) if (out) listing.push({ name: out, opType, nodeName: node.name ?? '' });
  }
  return listing;
}
