// Prerendered as build/venues/index.html: `mbo serve --static-dir` serves /venues/ from it
// (a path of its own, not the SPA fallback, which is the main view's page).
export const trailingSlash = 'always';
