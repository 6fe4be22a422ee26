import adapter from '@sveltejs/adapter-static';
import { vitePreprocess } from '@sveltejs/vite-plugin-svelte';

/** @type {import('@sveltejs/kit').Config} */
const config = {
	preprocess: vitePreprocess(),
	compilerOptions: { runes: true },
	kit: {
		// Static files only: `mbo serve --static-dir build` serves them, and answers unknown paths
		// with index.html (SPA fallback), so no server-side rendering is needed.
		adapter: adapter({ pages: 'build', assets: 'build', fallback: undefined, strict: true }),
		// Everything is inlined or bundled: the dashboard must work offline (no CDN).
		output: { bundleStrategy: 'single' }
	}
};

export default config;
