import { defineConfig } from 'vite';
import { svelte } from '@sveltejs/vite-plugin-svelte';

// The build lands in ui/dist, which the server embeds (server/src/http/ui.rs). Hashed names
// under assets/ are cached for a year; index.html is never cached. No inline script or style
// anywhere: the server's Content-Security-Policy is default-src 'self'.
export default defineConfig({
  plugins: [svelte()],
  build: {
    target: 'es2022',
    outDir: 'dist',
    emptyOutDir: true,
    assetsInlineLimit: 0,
    modulePreload: { polyfill: false },
    reportCompressedSize: false,
  },
  server: {
    // `npm run dev` against a running appliance: ./scripts/start.sh in another terminal.
    proxy: {
      '/api': 'http://127.0.0.1:8080',
      '/v1': 'http://127.0.0.1:8080',
    },
  },
});
