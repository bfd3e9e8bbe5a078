export { attach, Foresight, type AttachOptions, type ForesightEvents } from './foresight';
export {
	ENV_VARIABLES,
	ForesightConfigError,
	foresightOptionsSchema,
	optionsFromEnv,
	parseOptions,
	type ForesightOptions,
	type ResolvedForesightOptions,
} from './config';
export type { MediasoupModule } from './observe/attach';
export type {
	EntityCounts,
	EntityKind,
	GraphNode,
	Registry,
	RegistryEvents,
	WorkerNode,
	RouterNode,
	TransportNode,
	ProducerNode,
	ConsumerNode,
	DataProducerNode,
	DataConsumerNode,
} from './observe/registry';
export * from './profile/schema';
