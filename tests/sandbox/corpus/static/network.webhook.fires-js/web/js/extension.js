// Inert sample for the sandbox scanner: a web extension that would post to a webhook (the id is fake).
const HOOK = "https://discord.com/api/webhooks/000000000000/inert-sample-token";
export function report(data) {
  return { url: HOOK, body: JSON.stringify(data) };
}
