// The openai npm SDK against mapper: responses.create (a function-tool round trip),
// responses.stream with its final-response helper, and a second turn on previous_response_id
// (which needs `mapper serve --store`).
//   node openai_node.mjs <create|stream|previous_response> http://127.0.0.1:PORT/v1
import OpenAI from "openai";
import { runScenario } from "./recorder.mjs";

const MODEL = "fake-model";
const WEATHER = {
  type: "function",
  name: "get_weather",
  description: "Weather in a city.",
  parameters: { type: "object", properties: { q: { type: "string" } }, required: ["q"], additionalProperties: false },
  strict: true,
};

function client(baseURL, fetch) {
  return new OpenAI({ baseURL, apiKey: "sk-dummy", fetch, maxRetries: 0, timeout: 20_000 });
}

const scenarios = {
  async create(baseURL, fetch) {
    const openai = client(baseURL, fetch);
    const prompt = "please call get_weather for Paris";
    const first = await openai.responses.create({ model: MODEL, input: prompt, tools: [WEATHER] });
    const call = first.output.find((item) => item.type === "function_call");
    const second = await openai.responses.create({
      model: MODEL,
      tools: [WEATHER],
      input: [
        { role: "user", content: prompt },
        call,
        { type: "function_call_output", call_id: call.call_id, output: "sunny" },
      ],
    });
    return { first, second, output_text: second.output_text };
  },

  async stream(baseURL, fetch) {
    const openai = client(baseURL, fetch);
    const stream = openai.responses.stream({ model: MODEL, input: "streams work fine", instructions: "Be brief." });
    const events = [];
    for await (const event of stream) events.push(event);
    const final = await stream.finalResponse();
    return { events, final, output_text: final.output_text };
  },

  async previous_response(baseURL, fetch) {
    const openai = client(baseURL, fetch);
    const first = await openai.responses.create({ model: MODEL, input: "remember me", store: true });
    const stream = openai.responses.stream({
      model: MODEL,
      input: "what did I say",
      previous_response_id: first.id,
      store: true,
    });
    const second = await stream.finalResponse();
    const fetched = await openai.responses.retrieve(second.id);
    return { first, second, fetched };
  },
};

await runScenario(scenarios);
