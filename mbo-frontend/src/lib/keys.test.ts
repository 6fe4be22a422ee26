import { describe, expect, it } from 'vitest';
import { keyAction } from './keys';

const k = (key: string, mods: Partial<{ shiftKey: boolean; ctrlKey: boolean; metaKey: boolean; altKey: boolean }> = {}) => ({
	key,
	shiftKey: false,
	ctrlKey: false,
	metaKey: false,
	altKey: false,
	...mods
});

describe('keyAction', () => {
	it('maps the documented keys', () => {
		expect(keyAction(k(' '))).toEqual({ kind: 'toggle-play' });
		expect(keyAction(k('ArrowLeft'))).toEqual({ kind: 'seek', dir: -1, big: false });
		expect(keyAction(k('ArrowRight', { shiftKey: true }))).toEqual({ kind: 'seek', dir: 1, big: true });
		expect(keyAction(k('+'))).toEqual({ kind: 'speed', dir: 1 });
		expect(keyAction(k('='))).toEqual({ kind: 'speed', dir: 1 });
		expect(keyAction(k('-'))).toEqual({ kind: 'speed', dir: -1 });
		expect(keyAction(k('?'))).toEqual({ kind: 'help' });
		expect(keyAction(k('Escape'))).toEqual({ kind: 'close' });
	});
	it('leaves modified and other keys to the browser', () => {
		expect(keyAction(k('ArrowLeft', { ctrlKey: true }))).toBeNull();
		expect(keyAction(k('r', { metaKey: true }))).toBeNull();
		expect(keyAction(k('x'))).toBeNull();
	});
});
