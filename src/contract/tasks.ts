// The face tasks of the contract by name, and their kt.v1 Task enum values: one table for the server and the SDK.
import { Task } from '../gen/kt/v1/common.js';

/** Lower-case names of the `TASK_*` values; `identity` is embedding + gallery match. */
export type TaskName = 'age' | 'gender' | 'emotion' | 'landmarks' | 'embedding' | 'identity' | 'mesh';
export const taskNames: readonly TaskName[] = ['age', 'gender', 'emotion', 'landmarks', 'embedding', 'identity', 'mesh'];

export const enumOfTask: Readonly<Record<TaskName, Task>> = {
  age: Task.TASK_AGE,
  gender: Task.TASK_GENDER,
  emotion: Task.TASK_EMOTION,
  landmarks: Task.TASK_LANDMARKS,
  embedding: Task.TASK_EMBEDDING,
  identity: Task.TASK_IDENTITY,
  mesh: Task.TASK_MESH,
};

/** The name of a Task value; undefined for TASK_UNSPECIFIED and values this build does not know. */
export function taskOfEnum(task: Task): TaskName | undefined {
  return taskNames.find((name) => enumOfTask[name] === task);
}
