/** Allocation manager, pure part: snapshot types, actions, policies, the safety guard and the simulator. */
export * from './snapshot';
export * from './actions';
export * from './estimate';
export * from './safety';
export * from './policies';
export { simulate, SIM_DEFAULTS, type SimOptions, type SimResult } from './sim/simulator';
export { buildScenario, SCENARIO_NAMES, type Scenario, type ScenarioName, type SimEvent } from './sim/scenarios';
export { median, qualityCost, QUALITY_WEIGHTS, type ScenarioMetrics } from './sim/metrics';
