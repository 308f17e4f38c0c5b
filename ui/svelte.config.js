import { vitePreprocess } from '@sveltejs/vite-plugin-svelte';

export default {
  preprocess: vitePreprocess(),
  // Styles go to the CSS file Vite emits, never into a runtime <style> (blocked by the CSP).
  compilerOptions: { css: 'external' },
};
