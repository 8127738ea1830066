/**
 * Chat templates: render a list of messages with the Jinja `chat_template` of
 * tokenizer_config.json, as transformers' `apply_chat_template(..., tokenize=False)` does,
 * using `@huggingface/jinja` (the Jinja implementation transformers.js uses).
 */
import { Template } from '@huggingface/jinja';
import { InputError } from '../errors.js';

/** A tool call of an assistant message (OpenAI style, as the DeepSeek-V3 template reads it). */
export interface ChatToolCall {
  type: string;
  function: { name: string; arguments: string };
}

/** One chat message. `content: null` marks an assistant message that only calls tools. */
export interface ChatMessage {
  role: 'system' | 'user' | 'assistant' | 'tool' | string;
  content: string | null;
  tool_calls?: ChatToolCall[];
  [key: string]: unknown;
}

/** Options of {@link applyChatTemplate}. */
export interface ChatTemplateOptions {
  /** Append the prompt that starts the assistant's turn (`<｜Assistant｜>` for DeepSeek-V3). */
  addGenerationPrompt?: boolean;
  /** Template to use instead of the tokenizer's own. */
  chatTemplate?: string;
  /** Values of `bos_token`, `eos_token`, ... visible to the template. */
  specialTokens?: Record<string, string>;
  /** Further variables for the template (e.g. `tools`). */
  extra?: Record<string, unknown>;
}

const compiled = new Map<string, Template>();

/** Render `template` over `messages`; template errors become {@link InputError}. */
export function applyChatTemplate(template: string, messages: ChatMessage[], options: ChatTemplateOptions = {}): string {
  let t = compiled.get(template);
  if (t === undefined) {
    t = new Template(template);
    compiled.set(template, t);
  }
  try {
    return t.render({
      ...options.specialTokens,
      ...options.extra,
      messages,
      add_generation_prompt: options.addGenerationPrompt === true,
    });
  } catch (e) {
    throw new InputError(`applyChatTemplate: ${(e as Error).message}`);
  }
}
