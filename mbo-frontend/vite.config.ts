import { sveltekit } from '@sveltejs/kit/vite';
import { defineConfig } from 'vitest/config';

// `npm run dev` talks to a running `mbo serve` (default 127.0.0.1:8080; MBO_BACKEND overrides).
const backend = process.env.MBO_BACKEND ?? 'http://127.0.0.1:8080';

export default defineConfig({
	plugins: [sveltekit()],
	server: {
		proxy: {
			'/api': { target: backend, changeOrigin: false },
			'/health': { target: backend },
			'/metrics': { target: backend }
		}
	},
	test: {
		include: ['src/**/*.test.ts'],
		environment: 'node'
	}
});
