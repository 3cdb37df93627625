-- 0012 turned sequential scans off inside the group commit's function. That made the planner price
-- the one scan left in it, the append trigger's look at orderly_append_listeners (0011, a table of a
-- few rows with no other path), at the "disabled" cost of 10^10, far above jit_above_cost: every
-- batch then compiled that trigger's query with LLVM (inlining and optimisation) before running it,
-- about 200 ms of CPU per append. Measured (auto_explain, 100 orders/s, 2026-12-04 17:00 UTC): the
-- trigger's EXISTS took 210-260 ms, all of it JIT; PostgreSQL used 103-109% of a core and the
-- inventory and payment services fell a minute behind (two runs of two). An append is a few index
-- lookups and inserts: compiling is never worth it there, so both append functions (and the trigger
-- they fire, which runs with their settings) run without JIT. The single-command append gets 0012's
-- setting too: its "current version of the stream" is the same lookup, in a PL/pgSQL plan that is
-- also cached per connection.
ALTER FUNCTION orderly_append_batch(
    text[], bigint[], integer[], text[], text[], integer[], integer[], uuid[], text[], integer[], jsonb[], jsonb[])
    SET jit = off;
ALTER FUNCTION orderly_append(text, bigint, uuid[], text[], integer[], jsonb[], jsonb[], text, text)
    SET enable_seqscan = off
    SET jit = off;
