import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parser } from '@prometheus-io/lezer-promql';
import type { SyntaxNode } from '@lezer/common';
import { METRICS } from '../../plugin/metrics';
import { HORIZONS_S } from '../../plugin/predict/types';

/**
 * docs/grafana-dashboard.json is built on exactly the metrics registerMetrics() exports:
 * every PromQL expression is parsed with Prometheus' own grammar (@prometheus-io/lezer-promql),
 * and every series it selects, every label it matches or groups by, every label value of
 * a closed set and every {{label}} of a legend is checked against plugin/metrics.ts.
 */
const PREFIX = 'foresight_';
const dashboard = JSON.parse(readFileSync(join(__dirname, '../../docs/grafana-dashboard.json'), 'utf8')) as {
	panels: { title: string; type: string; targets?: { expr: string; legendFormat?: string }[] }[];
	templating: { list: { name: string; type: string; query?: { query: string } }[] };
};

/** Series name → labels it carries (histograms: _bucket with le, _sum, _count). */
const SERIES = new Map<string, Set<string>>();
for (const [name, m] of Object.entries(METRICS)) {
	const labels = new Set<string>(['host', ...m.labels]);
	if (m.type === 'histogram') {
		SERIES.set(`${PREFIX}${name}_bucket`, new Set([...labels, 'le']));
		SERIES.set(`${PREFIX}${name}_sum`, labels);
		SERIES.set(`${PREFIX}${name}_count`, labels);
	} else SERIES.set(`${PREFIX}${name}`, labels);
}
const metricOf = (series: string): string => {
	const name = series.slice(PREFIX.length);
	return name in METRICS ? name : name.replace(/_(bucket|sum|count)$/, '');
};

/** Labels whose values are a closed set the plugin defines. */
const VALUES: Record<string, readonly string[]> = {
	horizon_s: HORIZONS_S.map(String),
	stat: ['mean', 'p95'],
	direction: ['ingress', 'egress'],
	forecaster: ['predictor', 'last_value', 'ewma'],
	kind: [],
};

/** Grafana's own variables, replaced by values PromQL accepts; $host and $worker only ever appear inside label values. */
const GRAFANA_VARIABLES = /\$(__rate_interval|__interval|__range)\b/g;

interface Selector {
	series: string;
	matchers: { label: string; op: string; value: string }[];
	node: SyntaxNode;
}

function text(expr: string, node: SyntaxNode): string {
	return expr.slice(node.from, node.to);
}

function parse(expr: string): { root: SyntaxNode; selectors: Selector[]; errors: string[] } {
	const source = expr.replace(GRAFANA_VARIABLES, '1m');
	const tree = parser.parse(source);
	const errors: string[] = [];
	const selectors: Selector[] = [];
	tree.iterate({
		enter: (ref) => {
			if (ref.type.isError) errors.push(`syntax error at ${ref.from}: …${source.slice(Math.max(0, ref.from - 10), ref.from + 10)}…`);
			if (ref.name !== 'VectorSelector') return;
			const node = ref.node;
			const id = node.getChild('Identifier');
			const matchers: Selector['matchers'] = [];
			for (const m of node.getChild('LabelMatchers')?.getChildren('UnquotedLabelMatcher') ?? []) {
				const label = m.getChild('LabelName');
				const op = m.getChild('MatchOp');
				const value = m.getChild('StringLiteral');
				if (!label || !op || !value) continue;
				matchers.push({ label: text(source, label), op: text(source, op), value: JSON.parse(text(source, value)) as string });
			}
			if (node.getChild('LabelMatchers')?.getChild('QuotedLabelMatcher') || node.getChild('LabelMatchers')?.getChild('QuotedLabelName')) {
				errors.push('quoted label names or {"metric"} selectors are not used by this dashboard');
			}
			selectors.push({ series: id ? text(source, id) : '', matchers, node });
		},
	});
	return { root: tree.topNode, selectors, errors };
}

/** Problems of one expression; empty when it only uses what the plugin exports. */
function check(expr: string, legend?: string): string[] {
	const problems: string[] = [];
	const { root, selectors, errors } = parse(expr);
	problems.push(...errors);
	if (selectors.length === 0) problems.push('selects no series');
	for (const s of selectors) {
		const labels = SERIES.get(s.series);
		if (!labels) {
			problems.push(`${s.series || '(no metric name)'} is not a series registerMetrics() exports`);
			continue;
		}
		for (const m of s.matchers) {
			if (!labels.has(m.label)) problems.push(`${s.series} has no label ${m.label}`);
			const closed = VALUES[m.label];
			if (closed && closed.length > 0 && m.op === '=' && !closed.includes(m.value)) problems.push(`${m.label}="${m.value}" is never exported (values: ${closed.join(', ')})`);
		}
	}
	// Grouping labels (by/without/on/ignoring) must exist on every series they group.
	const source = expr.replace(GRAFANA_VARIABLES, '1m');
	const grouping = (node: SyntaxNode): string[] => (node.getChild('GroupingLabels')?.getChildren('LabelName') ?? []).map((n) => text(source, n));
	const within = (node: SyntaxNode): Selector[] => selectors.filter((s) => s.node.from >= node.from && s.node.to <= node.to);
	const visit = (node: SyntaxNode): void => {
		if (node.name === 'AggregateExpr' || node.name === 'BinaryExpr') {
			const modifier = node.getChild('AggregateModifier') ?? node.getChild('MatchingModifierClause');
			if (modifier) {
				for (const label of grouping(modifier)) {
					for (const s of within(node)) if (SERIES.get(s.series) && !SERIES.get(s.series)!.has(label)) problems.push(`groups by ${label}, which ${s.series} does not carry`);
				}
			}
		}
		for (let c = node.firstChild; c; c = c.nextSibling) visit(c);
	};
	visit(root);
	// A legend may only name labels the result keeps: those of the outermost by(), else of the selected series.
	for (const [, label] of (legend ?? '').matchAll(/\{\{\s*(\w+)\s*\}\}/g)) {
		const outer = outermostAggregate(root);
		const kept = outer ? grouping(outer.getChild('AggregateModifier') ?? outer) : [...new Set(selectors.flatMap((s) => [...(SERIES.get(s.series) ?? [])]))];
		if (!kept.includes(label!)) problems.push(`legend names {{${label}}}, which the result does not carry (it keeps: ${kept.join(', ') || 'no labels'})`);
	}
	return problems;
}

/** The aggregation whose result the expression returns, looking through functions and arithmetic with scalars. */
function outermostAggregate(root: SyntaxNode): SyntaxNode | undefined {
	let node: SyntaxNode | null = root.firstChild;
	while (node) {
		if (node.name === 'AggregateExpr') return node;
		if (node.name === 'FunctionCall') node = node.getChild('FunctionCallBody')?.lastChild?.prevSibling ?? null;
		else if (node.name === 'BinaryExpr') node = node.firstChild?.name === 'NumberDurationLiteral' ? node.lastChild : node.firstChild;
		else if (node.name === 'ParenExpr') node = node.firstChild?.nextSibling ?? null;
		else return undefined;
	}
	return undefined;
}

const targets = dashboard.panels.flatMap((p) => (p.targets ?? []).map((t) => ({ panel: p.title, ...t })));

describe('docs/grafana-dashboard.json', () => {
	test.each(targets.map((t) => [`${t.panel}: ${t.expr}`, t] as const))('%s', (_name, t) => {
		expect(check(t.expr, t.legendFormat)).toEqual([]);
	});

	test('template variables query exported series and labels', () => {
		for (const v of dashboard.templating.list.filter((v) => v.type === 'query')) {
			const m = /^label_values\((.+),\s*(\w+)\)$/.exec(v.query!.query);
			expect([v.name, m !== null]).toEqual([v.name, true]);
			const { selectors, errors } = parse(m![1]!);
			expect(errors).toEqual([]);
			for (const s of selectors) expect([v.name, SERIES.get(s.series)?.has(m![2]!)]).toEqual([v.name, true]);
		}
	});

	test('every exported metric is on the dashboard', () => {
		const used = new Set(targets.flatMap((t) => parse(t.expr).selectors.map((s) => metricOf(s.series))));
		expect(Object.keys(METRICS).filter((name) => !used.has(name))).toEqual([]);
	});

	test('the checker finds what it must: an unknown series, label, label value, grouping label, legend label and a syntax error', () => {
		expect(check('foresight_worker_cpu_pct{host="a"}')).toEqual(['foresight_worker_cpu_pct is not a series registerMetrics() exports']);
		expect(check('foresight_worker_cpu_percent{slot="0"}')).toEqual(['foresight_worker_cpu_percent has no label slot']);
		expect(check('foresight_worker_predicted_cpu_percent{horizon_s="60"}')).toEqual(['horizon_s="60" is never exported (values: 5, 15, 30)']);
		expect(check('sum by (pid) (foresight_worker_cpu_percent)')).toEqual(['groups by pid, which foresight_worker_cpu_percent does not carry']);
		expect(check('sum by (kind) (rate(foresight_profiler_requests_total[1m]))', '{{worker}}')).toEqual([
			'legend names {{worker}}, which the result does not carry (it keeps: kind)',
		]);
		expect(check('rate(foresight_store_written_points_total[5m]')).not.toEqual([]);
		expect(check('histogram_quantile(0.9, sum by (le) (rate(foresight_decision_seconds_bucket[5m])))')).toEqual([]);
		expect(check('foresight_decision_seconds_sum{le="0.1"}')).toEqual(['foresight_decision_seconds_sum has no label le']);
	});
});
