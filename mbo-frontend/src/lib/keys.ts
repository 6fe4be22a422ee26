/** Keyboard shortcuts: one table used both to handle keys and to list them in the help overlay. */

export type KeyAction =
	| { kind: 'toggle-play' }
	| { kind: 'seek'; dir: 1 | -1; big: boolean }
	| { kind: 'speed'; dir: 1 | -1 }
	| { kind: 'help' }
	| { kind: 'close' }
	| { kind: 'theme' };

export const SHORTCUTS: readonly { keys: string; what: string }[] = [
	{ keys: 'Space', what: 'play / pause' },
	{ keys: '← / →', what: 'seek 10 s back / forward (Shift: 60 s)' },
	{ keys: '+ / −', what: 'faster / slower' },
	{ keys: 'T', what: 'dark / light theme' },
	{ keys: '?', what: 'this help' },
	{ keys: 'Esc', what: 'close help or the order queue' }
];

export interface KeyLike {
	key: string;
	shiftKey: boolean;
	ctrlKey: boolean;
	metaKey: boolean;
	altKey: boolean;
}

/** The action of a key press, or null (modified keys belong to the browser). */
export function keyAction(e: KeyLike): KeyAction | null {
	if (e.ctrlKey || e.metaKey || e.altKey) return null;
	switch (e.key) {
		case ' ':
		case 'Spacebar':
			return { kind: 'toggle-play' };
		case 'ArrowLeft':
			return { kind: 'seek', dir: -1, big: e.shiftKey };
		case 'ArrowRight':
			return { kind: 'seek', dir: 1, big: e.shiftKey };
		case '+':
		case '=':
			return { kind: 'speed', dir: 1 };
		case '-':
		case '_':
			return { kind: 'speed', dir: -1 };
		case '?':
			return { kind: 'help' };
		case 'Escape':
			return { kind: 'close' };
		case 't':
		case 'T':
			return { kind: 'theme' };
		default:
			return null;
	}
}
