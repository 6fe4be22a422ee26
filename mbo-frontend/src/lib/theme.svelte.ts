/** Dark or light theme: the user's choice (kept in localStorage), else the system's. */
export type Theme = 'dark' | 'light';

const KEY = 'mbo-theme';

export class ThemeState {
	current = $state<Theme>('dark');

	init(): void {
		const saved = localStorage.getItem(KEY);
		this.current =
			saved === 'light' || saved === 'dark'
				? saved
				: matchMedia('(prefers-color-scheme: light)').matches
					? 'light'
					: 'dark';
		this.applyToDocument();
	}

	toggle(): void {
		this.current = this.current === 'dark' ? 'light' : 'dark';
		localStorage.setItem(KEY, this.current);
		this.applyToDocument();
	}

	private applyToDocument(): void {
		document.documentElement.dataset.theme = this.current;
	}
}

/** Canvas colours of the current theme, read from the CSS variables. */
export function cssVar(name: string, fallback: string): string {
	const v = getComputedStyle(document.documentElement).getPropertyValue(name).trim();
	return v === '' ? fallback : v;
}
