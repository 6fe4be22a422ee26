// A client-only app: the page is an empty shell prerendered as build/index.html, and every
// view is drawn from the live stream in the browser.
export const prerender = true;
export const ssr = false;
