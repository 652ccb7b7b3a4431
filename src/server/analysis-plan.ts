// A request's AnalysisOptions checked against the config and repository: tasks, the model per task, detection limits.
import { InvalidInputError, NotFoundError } from '../core/errors.js';
import type { FaceTask } from '../models/manifest.js';
import { Task } from '../gen/kt/v1/common.js';
import type { AnalysisOptions } from '../gen/kt/v1/face_analysis.js';
import { enumOfTask, taskOfEnum, type TaskName } from '../contract/tasks.js';
import type { ServerConfig } from './config.js';
import type { ModelRegistry } from './model-registry.js';

/** The manifest output task a request task reads (identity reads the embedding). */
export const manifestTaskOf: Record<TaskName, FaceTask> = {
  age: 'age',
  gender: 'gender',
  emotion: 'emotion',
  landmarks: 'landmarks',
  embedding: 'embedding',
  identity: 'embedding',
  mesh: 'mesh',
};

export interface ModelChoice {
  name: string;
  /** 0: the serving version at the time the frame is analysed. */
  version: number;
}

export interface AnalysisPlan {
  /** Requested tasks (or the config's tasks when none is named), each once, in request order; empty: detection only. */
  tasks: TaskName[];
  /** The model answering each requested task. */
  models: Partial<Record<TaskName, ModelChoice>>;
  minFaceSizePx: number;
  maxFaces: number;
  minScore: number;
  identityThreshold: number;
}

function taskName(task: Task, where: string): TaskName {
  const name = taskOfEnum(task);
  if (name === undefined) {
    const expected = `expected one of ${Object.values(enumOfTask).join(', ')}${where === 'analysis.tasks' ? '; TASK_DETECTION alone for detection only' : ''}`;
    throw new InvalidInputError(
      task === Task.TASK_UNSPECIFIED
        ? `${where}: TASK_UNSPECIFIED is not a task (${expected})`
        : `${where}: unknown task ${String(task)} (${expected})`,
    );
  }
  return name;
}

/**
 * The face tasks a request asks for. No task named: the server's configured default tasks (`config.tasks`), so a
 * first call without options gets answers rather than bare boxes; [TASK_DETECTION] asks for detection only.
 */
export function requestedTasks(requested: readonly Task[], config: ServerConfig): TaskName[] {
  if (requested.length === 0) return [...new Set(config.tasks)];
  const tasks: TaskName[] = [];
  for (const t of requested) {
    if (t === Task.TASK_DETECTION) continue;
    const name = taskName(t, 'analysis.tasks');
    if (!tasks.includes(name)) tasks.push(name);
  }
  return tasks;
}

/**
 * Validates AnalysisOptions: unknown or unspecified tasks are INVALID_ARGUMENT, an override naming an unknown model
 * or version is NOT_FOUND, one whose model does not answer the task is INVALID_ARGUMENT. Zero fields take the
 * config's defaults, an empty task list the config's tasks.
 */
export function planAnalysis(options: AnalysisOptions | undefined, config: ServerConfig, registry: ModelRegistry): AnalysisPlan {
  const tasks = requestedTasks(options?.tasks ?? [], config);
  const overrides = new Map<TaskName, ModelChoice>();
  for (const o of options?.modelOverrides ?? []) {
    const task = taskName(o.task, 'analysis.model_overrides.task');
    const ref = o.model;
    if (!ref || ref.name === '') throw new InvalidInputError(`analysis.model_overrides for ${task}: a model name is required`);
    if (!registry.has(ref.name, ref.version)) {
      throw new NotFoundError(
        `model ${ref.name}${ref.version ? ` version ${ref.version}` : ''} (override for ${task}) not found in the model repository`,
      );
    }
    const manifest = registry.manifestFor(ref.name, ref.version);
    if (!manifest.outputs.some((out) => out.task === manifestTaskOf[task])) {
      throw new InvalidInputError(
        `model ${ref.name} does not answer task ${task} (its outputs answer: ${[...new Set(manifest.outputs.map((out) => out.task))].join(', ')})`,
      );
    }
    overrides.set(task, { name: ref.name, version: ref.version });
  }
  const models: AnalysisPlan['models'] = {};
  for (const task of tasks) {
    const choice = overrides.get(task) ?? { name: config.taskModels[task], version: 0 };
    if (!overrides.has(task) && !registry.has(choice.name))
      throw new NotFoundError(`model ${choice.name} (the server's model for ${task}) is not in the model repository`);
    models[task] = choice;
  }
  const minScore = options?.minScore ?? 0;
  if (!(minScore >= 0 && minScore <= 1)) throw new InvalidInputError(`analysis.min_score must be in 0..1, got ${minScore}`);
  const identityThreshold = options?.identityThreshold ?? 0;
  if (!(identityThreshold >= -1 && identityThreshold <= 1))
    throw new InvalidInputError(`analysis.identity_threshold must be in -1..1, got ${identityThreshold}`);
  return {
    tasks,
    models,
    minFaceSizePx: options?.minFaceSizePx || config.minFaceSizePx,
    maxFaces: Math.min(options?.maxFaces || config.maxFacesPerFrame, 1000),
    minScore: minScore || config.detectorScoreThreshold,
    identityThreshold: identityThreshold || config.identityThreshold,
  };
}
