// The Vercel AI SDK (`ai` + `@ai-sdk/openai`) against mapper, on the provider's defaults: the
// default model is the Responses one, and store is on, so earlier assistant output goes back as
// {"type": "item_reference", "id": ...} (which only `mapper serve --store` can resolve).
//   node vercel_ai.mjs <generate|stream|multi_turn> http://127.0.0.1:PORT/v1
import { createOpenAI } from "@ai-sdk/openai";
import { generateText, stepCountIs, streamText, tool } from "ai";
import { z } from "zod";
import { runScenario } from "./recorder.mjs";

const MODEL = "fake-model";

function weatherTools(calls) {
  return {
    get_weather: tool({
      description: "Weather in a city.",
      inputSchema: z.object({ q: z.string() }),
      execute: async ({ q }) => {
        calls.push(q);
        return "sunny";
      },
    }),
  };
}

function provider(baseURL, fetch) {
  return createOpenAI({ baseURL, apiKey: "sk-dummy", fetch });
}

function stepSummary(step) {
  return {
    finishReason: step.finishReason,
    text: step.text,
    toolCalls: step.toolCalls.map((call) => ({ name: call.toolName, input: call.input })),
    toolResults: step.toolResults.map((result) => ({ name: result.toolName, output: result.output })),
  };
}

const scenarios = {
  async generate(baseURL, fetch) {
    const calls = [];
    const result = await generateText({
      model: provider(baseURL, fetch)(MODEL),
      prompt: "please call get_weather for Paris",
      tools: weatherTools(calls),
      stopWhen: stepCountIs(3),
      maxRetries: 0,
    });
    return { text: result.text, executed: calls, steps: result.steps.map(stepSummary), usage: result.totalUsage };
  },

  async stream(baseURL, fetch) {
    const calls = [];
    const result = streamText({
      model: provider(baseURL, fetch)(MODEL),
      prompt: "please call get_weather for Paris",
      tools: weatherTools(calls),
      stopWhen: stepCountIs(3),
      maxRetries: 0,
      onError: () => {}, // the error surfaces below, through the awaited promises
    });
    const parts = [];
    for await (const part of result.fullStream) {
      if (part.type === "error") throw part.error;
      parts.push(part.type);
    }
    const steps = await result.steps;
    return { text: await result.text, executed: calls, parts, steps: steps.map(stepSummary) };
  },

  async multi_turn(baseURL, fetch) {
    const model = provider(baseURL, fetch)(MODEL);
    const first = await generateText({ model, prompt: "hello there", maxRetries: 0 });
    const messages = [...first.response.messages, { role: "user", content: "and once more" }];
    const second = await generateText({ model, messages, maxRetries: 0 });
    return { first: first.text, second: second.text, firstId: first.response.id, secondId: second.response.id };
  },
};

await runScenario(scenarios);
