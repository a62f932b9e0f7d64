// What every driver shares: a fetch that records the bodies the client sends and the statuses it
// gets back, and one JSON document on stdout at the end (the pytest side parses it). A failure is
// reported the same way, with the requests sent so far, so a refusal shows the exact body.

export function recordingFetch() {
  const exchanges = [];
  async function recorded(input, init = {}) {
    const body = typeof init.body === "string" ? JSON.parse(init.body) : null;
    const response = await fetch(input, init);
    const exchange = { method: init.method ?? "GET", url: String(input), body, status: response.status };
    if (!response.ok) exchange.error = await response.clone().text();
    exchanges.push(exchange);
    return response;
  }
  return { fetch: recorded, exchanges };
}

// Run `scenario(baseURL, fetch)` and print {result, exchanges} or {error, exchanges}; exit 1 on error.
export async function runScenario(scenarios, argv = process.argv) {
  const [name, baseURL] = argv.slice(2);
  const scenario = scenarios[name];
  if (!scenario || !baseURL) {
    console.error(`usage: node ${argv[1]} <${Object.keys(scenarios).join("|")}> <base URL>`);
    process.exit(2);
  }
  const { fetch, exchanges } = recordingFetch();
  try {
    const result = await scenario(baseURL, fetch);
    process.stdout.write(JSON.stringify({ result, exchanges }) + "\n");
  } catch (error) {
    process.stdout.write(JSON.stringify({ error: String(error?.stack ?? error), exchanges }) + "\n");
    process.exitCode = 1;
  }
}
