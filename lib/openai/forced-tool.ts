import type { Tool } from 'ollama'
import type { ChatMessage } from '../ollama/client.ts'
import { unsupported } from './wire.ts'

/**
 * A `tool_choice` that makes the model call a tool ("required", or one function named), which
 * Ollama cannot be told directly. Emulated as other servers do: Ollama is asked for JSON in the
 * shape of the call (Ollama's `format`, a JSON Schema turned into a grammar), with an instruction
 * that says which function, and the JSON becomes the tool call. The tools themselves are not
 * offered then, so the model's answer is never read as text or as a call of something else.
 */
export interface ForcedTool {
  /** Ollama's `format`: the named tool's parameters, or (several tools) `{name, arguments}` of one of them. */
  format: Record<string, unknown>
  /** The message that tells the model which function it calls, sent last. */
  instruction: ChatMessage
  /** The call in the model's JSON answer, or null when the answer is not one (cut short, malformed). */
  callOf(text: string): { name: string; arguments: Record<string, unknown> } | null
}

/** The name a `tool_choice` object forces: Chat Completions' `{type, function: {name}}` or Responses' `{type, name}`. */
function forcedName(choice: Record<string, unknown>): string | undefined {
  if (choice.type !== 'function') return undefined
  const fn = choice.function
  const name = fn && typeof fn === 'object' ? (fn as Record<string, unknown>).name : choice.name
  return typeof name === 'string' ? name : undefined
}

const isObject = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value)

const parametersOf = (tool: Tool) => (isObject(tool.function.parameters) ? tool.function.parameters : { type: 'object', properties: {} }) as Record<string, unknown>

const described = (tool: Tool) => `${tool.function.name}${tool.function.description ? `: ${tool.function.description}` : ''}`

/**
 * The forced call `choice` asks for among `tools` (Ollama's shape), or null for "auto", "none" or
 * none given. A choice this server cannot honour is 400 naming `tool_choice`, as is a named
 * function that is not among the tools.
 */
export function forcedToolOf(choice: unknown, tools: Tool[]): ForcedTool | null {
  if (choice === undefined || choice === null || choice === 'auto' || choice === 'none') return null
  if (choice === 'required') {
    if (tools.length === 0) throw unsupported('tool_choice', 'tool_choice "required" needs at least one function in tools.')
    if (tools.length === 1) return namedCall(tools[0]!)
    return oneOfCalls(tools)
  }
  const name = isObject(choice) ? forcedName(choice) : undefined
  if (name === undefined) {
    throw unsupported('tool_choice', 'tool_choice may be "auto", "none", "required", or a function ({"type": "function", …} with its name).')
  }
  const tool = tools.find((candidate) => candidate.function.name === name)
  if (!tool) throw unsupported('tool_choice', `tool_choice names the function ${JSON.stringify(name.slice(0, 64))}, which is not among the function tools.`)
  return namedCall(tool)
}

/** One function: its arguments are the answer. */
function namedCall(tool: Tool): ForcedTool {
  const name = String(tool.function.name)
  return {
    format: parametersOf(tool),
    instruction: { role: 'system', content: `Call the function ${described(tool)}\nAnswer with its arguments only, as one JSON object that follows its parameters.` },
    callOf(text) {
      const value = parseJson(text)
      return isObject(value) ? { name, arguments: value } : null
    },
  }
}

/** One of several functions: `{name, arguments}`, each name with its own parameters. */
function oneOfCalls(tools: Tool[]): ForcedTool {
  const names = new Set(tools.map((tool) => String(tool.function.name)))
  return {
    format: {
      anyOf: tools.map((tool) => ({
        type: 'object',
        properties: { name: { const: tool.function.name }, arguments: parametersOf(tool) },
        required: ['name', 'arguments'],
      })),
    },
    instruction: {
      role: 'system',
      content: `Call one of these functions:\n${tools.map((tool) => `- ${described(tool)}`).join('\n')}\nAnswer with one JSON object: {"name": the function's name, "arguments": its arguments as its parameters say}.`,
    },
    callOf(text) {
      const value = parseJson(text)
      if (!isObject(value) || typeof value.name !== 'string' || !names.has(value.name) || !isObject(value.arguments)) return null
      return { name: value.name, arguments: value.arguments }
    },
  }
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text)
  } catch {
    return undefined
  }
}
