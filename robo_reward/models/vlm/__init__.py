"""Vision-language reward models queried over an OpenAI-compatible chat API (vLLM, issue 12).

:mod:`.client` is the one HTTP client (concurrency, retries, cache, logprobs); each
protocol (:mod:`.gvl`: GVL, Ma et al. 2024, "Vision Language Models are In-Context Value
Learners") builds requests and parses answers; :mod:`.model` is the registered
``vlm`` reward model.
"""
