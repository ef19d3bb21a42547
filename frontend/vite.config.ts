import { defineConfig } from "vite";

// `npm run dev` proxies the API to a server started with `rlserve up` (port 8000).
export default defineConfig({
  base: "./",
  build: { outDir: "dist", emptyOutDir: true, chunkSizeWarningLimit: 300 },
  server: {
    proxy: { "/api": "http://127.0.0.1:8000" },
  },
});
