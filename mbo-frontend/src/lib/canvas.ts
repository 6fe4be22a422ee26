/** Sizes a canvas for the device pixel ratio and returns a context drawing in CSS pixels. */
export function sizeCanvas(c: HTMLCanvasElement, cssW: number, cssH: number): CanvasRenderingContext2D | null {
	// Capped at 2: a 3x canvas quadruples the pixels to fill for no visible gain here.
	const dpr = Math.min(window.devicePixelRatio || 1, 2);
	const pw = Math.max(1, Math.round(cssW * dpr));
	const ph = Math.max(1, Math.round(cssH * dpr));
	if (c.width !== pw || c.height !== ph) {
		c.width = pw;
		c.height = ph;
	}
	const ctx = c.getContext('2d');
	ctx?.setTransform(dpr, 0, 0, dpr, 0, 0);
	return ctx;
}
