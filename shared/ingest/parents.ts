/** Resources some other resource names as its parent: their arrival or release may release held children. */
import { resources as registry } from '../../schemas/index.js';

let parentNames: Set<string> | undefined;

export function isParent(name: string): boolean {
  parentNames ??= new Set(Object.values(registry).flatMap((r) => r.parents.map((p) => p.resource)));
  return parentNames.has(name);
}
