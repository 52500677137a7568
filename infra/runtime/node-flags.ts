/**
 * V8 flags of the runtime's own process. Node.js reads them only from its command line (or
 * NODE_OPTIONS, which the runtime passes on to its replicas and so must not carry them), so every
 * way of starting the runtime names them: the Makefile's `up`, package.json's `up` and the bench's
 * runtime process (test/unit/runtime-flags.test.ts checks the first two).
 *
 * The young generation: V8 lets each semi-space grow to 64 MiB on a machine with this much memory,
 * and the runtime, which allocates a request's objects and buffers and drops them at once, grew it
 * to 128 MiB under the headline's load — most of its RSS at load (docs/bench.md "The runtime's young
 * generation"). Capped here as the functions' is in infra/env/common.yml.
 */
export const RUNTIME_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=4'];
