/** `data-testid` values used by the e2e tests (e2e/run.mjs reads the same strings). */
export const TestId = {
	symbolPicker: 'symbol-picker',
	lastPrice: 'last-price',
	spread: 'spread',
	mid: 'mid',
	orderCount: 'order-count',
	badgeCrossed: 'badge-crossed',
	badgeBadBook: 'badge-bad-book',
	badgeConnection: 'badge-connection',
	ladder: 'ladder',
	ladderRow: 'ladder-row',
	queue: 'queue',
	queueOrder: 'queue-order',
	depthChart: 'depth-chart',
	heatmap: 'heatmap',
	tape: 'tape',
	priceChart: 'price-chart',
	playback: 'playback',
	playPause: 'play-pause',
	speed: 'speed',
	timeline: 'timeline',
	timelinePosition: 'timeline-position',
	perf: 'perf',
	help: 'help',
	helpButton: 'help-button',
	themeButton: 'theme-button',
	error: 'error'
} as const;

export type TestIdValue = (typeof TestId)[keyof typeof TestId];
