/* tego 0.2.0 -> 0.3.0: security (jobs run as their owner, per-role
 * isolation, bounds and quotas) */
\echo Use "ALTER EXTENSION tego UPDATE TO '0.3.0'" to load this file. \quit

--
-- Jobs: who is calling, bounds, per-role isolation of runs
--

-- (jobs: end)



--
-- Registry: built_in, import_plugins
--

-- (registry: end)



--
-- Leases, plugin operation guards and app status: per-role isolation,
-- quotas
--

-- (shared state: end)



--
-- Events: message size, payload visibility
--

-- (events: end)
