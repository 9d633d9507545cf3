// Look-alike: a web extension that links to the community and the docs.
const LINKS = ["https://discord.gg/example", "https://example.invalid/docs/nodes.html"];
export function help() {
  return LINKS;
}
