"""The sizing planner against figures worked by hand (the working is in each test's comments).

Constants the working uses: GiB = 2**30 bytes; gpu_memory_utilization 0.90; 1.5 GiB per GPU of runtime
reserve; embeddings and the output head at 2 bytes per weight in every quantization; KV cache at 2 bytes.
"""

from __future__ import annotations

import pytest
from serving_helpers import gpu_host, model

from sovkit.config.planner import GPU_MEMORY_UTILIZATION, RUNTIME_RESERVE_GIB, plan_model, plan_site


def test_constants_the_working_assumes():
    assert (GPU_MEMORY_UTILIZATION, RUNTIME_RESERVE_GIB) == (0.90, 1.5)


def test_llama_3_1_8b_fp8_on_one_h100(stacks):
    # za-national-dc, llama-3-1-8b: Llama 3.1 8B, fp8, tensorParallel 1, maxContext 16384, H100-SXM5-80GB.
    # embeddings: vocab 128256 x hidden 4096 x 2 (input + untied head) = 1,050,673,152 parameters
    # body:       8,030,000,000 - 1,050,673,152 = 6,979,326,848 parameters x 1 byte (fp8)
    # weights:    6,979,326,848 + 1,050,673,152 x 2 = 9,080,673,152 B = 8.4570 GiB
    # KV/token:   2 (K,V) x 32 layers x 8 KV heads x 128 head_dim x 2 B = 131,072 B = 128 KiB
    # budget:     81559 MiB = 79.6475 GiB x 0.90 = 71.6827 GiB
    # free:       71.6827 - 8.4570 - 1.5 = 61.7257 GiB = 66,277,637,... B -> / 131,072 = 505,656 tokens
    # sequences:  505,656 // 16,384 = 30  -> max-num-seqs 30
    plan = plan_model(stacks["za-national-dc"], "llama-3-1-8b")
    assert plan.fits
    assert plan.weights_gib == pytest.approx(8.4570, abs=5e-4)
    assert plan.kv_bytes_per_token == 131_072
    assert plan.tensor_parallel == 1 and plan.pipeline_parallel == 1
    assert plan.kv_cache_gib == pytest.approx(61.7257, abs=5e-4)
    assert plan.kv_tokens == pytest.approx(505_656, abs=2)
    assert (plan.concurrent_sequences, plan.max_num_seqs) == (30, 30)


def test_sarvam_1_on_one_l40s(stacks):
    # in-mh-pune, sarvam-1: 2.51e9 parameters, all at 2 bytes (none): 5,020,000,000 B = 4.6752 GiB
    # KV/token:   2 x 28 layers x 8 KV heads x 128 x 2 B = 114,688 B = 112 KiB
    # budget:     46068 MiB = 44.9883 GiB x 0.90 = 40.4895 GiB
    # free:       40.4895 - 4.6752 - 1.5 = 34.3143 GiB -> x 2**30 / 114,688 = 321,259 tokens
    # sequences:  321,259 // 8192 = 39
    plan = plan_model(stacks["in-mh-pune"], "sarvam-1")
    assert plan.weights_gib == pytest.approx(4.6752, abs=5e-4)
    assert plan.kv_bytes_per_token == 114_688
    assert plan.kv_tokens == pytest.approx(321_259, abs=2)
    assert plan.concurrent_sequences == 39
    assert plan.gpus_per_replica == 1


def test_qwen2_5_14b_over_two_mi210(stacks):
    # id-sulsel-cloud, qwen2-5-14b: 14.7e9 x 2 B = 29,400,000,000 B = 27.3807 GiB, tensorParallel 2
    # per GPU:    64 GiB x 0.90 = 57.6 - 27.3807 / 2 - 1.5 = 42.4097 GiB
    # KV/token on one GPU: 2 x 48 layers x (8 KV heads / 2) x 128 x 2 B = 98,304 B
    # tokens:     42.4097 x 2**30 / 98,304 = 463,225; sequences 463,225 // 32,768 = 14
    plan = plan_model(stacks["id-sulsel-cloud"], "qwen2-5-14b")
    assert plan.weights_gib == pytest.approx(27.3807, abs=5e-4)
    assert plan.kv_bytes_per_token == 196_608  # the whole model: 2 x 48 x 8 x 128 x 2
    assert plan.tensor_parallel == 2
    assert plan.kv_cache_gib == pytest.approx(2 * 42.4097, abs=1e-3)
    assert plan.kv_tokens == pytest.approx(463_225, abs=2)
    assert plan.concurrent_sequences == 14


def test_qwen2_5_1_5b_awq_on_cpu(stacks):
    # br-ministerio-cpu: tied embeddings 151936 x 1536 = 233,373,696 parameters at 2 B = 466,747,392 B
    # body 1,540,000,000 - 233,373,696 = 1,306,626,304 x 0.52 B (AWQ) = 679,445,678 B
    # weights 1,146,193,070 B = 1.0675 GiB
    # KV/token 2 x 28 x 2 x 128 x 2 = 28,672 B; 4 sequences x 4096 tokens = 0.4375 GiB -> at least 1 GiB
    # tokens 2**30 / 28,672 = 37,449; sequences 37,449 // 4096 = 9; RAM 1.0675 + 1 + 2 = 4.0675 GiB
    plan = plan_model(stacks["br-ministerio-cpu"], "qwen2-5-1-5b")
    assert plan.weights_gib == pytest.approx(1.0675, abs=5e-4)
    assert plan.kv_cache_gib == 1.0
    assert (plan.kv_tokens, plan.concurrent_sequences) == (37_449, 9)
    assert plan.memory_gib == pytest.approx(4.0675, abs=5e-4)
    assert plan.gpus_per_replica == 0


def test_too_big_for_an_l4_names_the_quantization_that_fits(variant):
    # Qwen2.5 14B unquantized needs 27.38 GiB of weights; an L4 offers 23034 MiB x 0.90 = 20.245 GiB.
    # AWQ: 1,557,135,360 embedding parameters x 2 B + 13,142,864,640 x 0.52 B = 9,948,560,333 B = 9.265 GiB,
    # free 20.245 - 9.265 - 1.5 = 9.480 GiB / 196,608 B per token = 51,77x tokens = 1 sequence of 32768.
    site = variant("in-mh-pune", hosts=gpu_host("L4-24GB", 1),
                   models={"big": model("qwen2.5-14b-instruct", context=32768, tensorParallel=1)})
    [plan] = plan_site(site)
    assert not plan.fits
    assert "does not fit" in plan.problem and "L4-24GB" in plan.problem
    assert plan.suggestions[0].startswith("quantization: awq")
    assert "1 sequences of 32768" in plan.suggestions[0]


def test_aya_fits_an_a10_and_nemo_at_32k_needs_fp8(variant):
    # Aya Expanse 8B (none; a research site, as its licence is non-commercial): 14.9565 GiB on an A10 (23028 MiB x
    # 0.90 = 20.2400 GiB usable) leaves 20.2400 - 14.9565 - 1.5 = 3.7835 GiB / 128 KiB per token = 30,995 tokens =
    # 3 sequences of 8192.
    site = variant("in-mh-pune", hosts=gpu_host("A10-24GB", 1), servedUses=["research"],
                   models={"aya-8b": model("aya-expanse-8b", context=8192, tensorParallel=1)})
    [plan] = plan_site(site)
    assert plan.fits and plan.concurrent_sequences == 3
    # Mistral Nemo (none) is 22.72 GiB: more than the A10. fp8: 1,342,177,280 embedding parameters x 2 B +
    # 10,857,822,720 x 1 B = 13,542,177,... B = 12.6121 GiB, leaving 6.1279 GiB / 160 KiB per token
    # (2 x 40 x 8 x 128 x 2 B) = 40,159 tokens = 1 sequence of 32768.
    site = variant("in-mh-pune", hosts=gpu_host("A10-24GB", 1),
                   models={"nemo": model("mistral-nemo-instruct-2407", context=32768, tensorParallel=1)})
    [plan] = plan_site(site)
    assert not plan.fits
    assert plan.suggestions[0] == "quantization: fp8 (12.6 GiB of weights, 1 sequences of 32768 tokens)"


def test_auto_tensor_parallel_picks_the_smallest_size_with_four_sequences(variant):
    # Qwen2.5 14B at 32 K on L40S (40.49 GiB usable): TP1 leaves 40.49 - 27.38 - 1.5 = 11.61 GiB
    # = 63,4xx tokens at 192 KiB = 1 sequence (< 4); TP2 leaves 40.49 - 13.69 - 1.5 = 25.30 GiB per GPU at
    # 96 KiB per token per GPU = 276,3xx tokens = 8 sequences -> TP 2.
    site = variant("in-mh-pune", hosts=gpu_host("L40S-48GB", 4),
                   models={"qwen": model("qwen2.5-14b-instruct", context=32768)})
    [plan] = plan_site(site)
    assert plan.tensor_parallel == 2
    assert plan.concurrent_sequences == 8


def test_replicas_beyond_the_gpus_of_the_site_are_refused(variant):
    site = variant("in-mh-pune", hosts=gpu_host("L40S-48GB", 4), servedUses=["research"],
                   models={"model-a": model("sarvam-1", tensorParallel=2),
                           "model-b": model("sarvam-1", tensorParallel=2),
                           "model-c": model("sarvam-1", tensorParallel=1)})
    plans = plan_site(site)
    assert plans[0].fits and plans[1].fits
    assert plans[0].placement == ((("pune-ai-01", (0, 1)),),) and plans[1].placement == ((("pune-ai-01", (2, 3)),),)
    assert not plans[2].fits and "only 0 of 1 replicas" in plans[2].problem


def test_tensor_parallel_must_divide_the_heads(variant):
    # Qwen2.5 7B has 28 attention heads: 8 GPUs cannot share them evenly (28 / 8 = 3.5).
    site = variant("in-mh-pune", hosts=gpu_host("H100-SXM5-80GB", 8),
                   models={"qwen": model("qwen2.5-7b-instruct", tensorParallel=8)})
    [plan] = plan_site(site)
    assert "does not divide the 28 attention heads" in plan.problem


def test_a_replica_spanning_two_nodes_is_tensor_parallel_within_and_pipeline_across(variant):
    # za-national-dc (kubernetes, 2 x 8 H100): tensorParallel 16 -> 8 GPUs per node x 2 pipeline stages.
    # Mistral Nemo, none: embeddings 131072 x 5120 x 2 = 1,342,177,280; weights 12.2e9 x 2 B = 22.7243 GiB.
    # per GPU: 71.6827 - 22.7243 / 16 - 1.5 = 68.7624 GiB; KV/token on one GPU: 2 x (40 / 2) layers x
    # (8 / 8) KV head x 128 x 2 B = 10,240 B -> 7,210,... tokens: 55 sequences of 131072
    site = variant("za-national-dc", models={"nemo": model("mistral-nemo-instruct-2407", context=131072,
                                                           tensorParallel=16)})
    [plan] = plan_site(site)
    assert (plan.tensor_parallel, plan.pipeline_parallel, plan.gpus_per_replica) == (8, 2, 16)
    assert plan.weights_gib == pytest.approx(22.7243, abs=5e-4)
    assert plan.concurrent_sequences == 55


def test_every_shipped_stack_fits(stacks):
    for site in stacks.values():
        for plan in plan_site(site):
            assert plan.fits, f"{site.name}/{plan.served_name}: {plan.problem}"


def test_when_no_quantization_fits_a_smaller_catalogue_model_is_named(variant):
    # Gemma 2 9B is published unquantized only: 9.24e9 x 2 B = 17.2108 GiB on an L4 (20.2452 GiB usable)
    # leaves 20.2452 - 17.2108 - 1.5 = 1.5344 GiB; its KV/token 2 x 42 x 8 x 256 x 2 B = 344,064 B, so
    # 1.5344 x 2**30 / 344,064 = 4,788 tokens: not one 8192-token sequence.
    # The largest smaller generative model covering English with an 8 K context, under a licence that allows the
    # site's public service: Qwen3 8B unquantized, 8.2e9 x 2 B = 15.2737 GiB, 20.2452 - 15.2737 - 1.5 = 3.4715 GiB /
    # 144 KiB per token (2 x 36 x 8 x 128 x 2 B) = 25,278 tokens = 3 sequences.
    site = variant("in-mh-pune", hosts=gpu_host("L4-24GB", 1),
                   models={"gemma": model("gemma-2-9b-it", context=8192, tensorParallel=1)})
    [plan] = plan_site(site)
    assert not plan.fits
    assert plan.kv_tokens == pytest.approx(4_788, abs=2)
    assert plan.suggestions == ("catalogue: qwen3-8b with quantization: none (15.3 GiB of weights, 3 sequences)",)


def test_an_encoder_keeps_no_kv_cache_and_a_speech_model_caches_its_encoder(variant):
    # Two L4s (23034 MiB = 22.4941 GiB x 0.90 = 20.2447 GiB usable each), one model on each.
    # Whisper large-v3-turbo: 809e6 x 2 B = 1.5069 GiB; 20.2447 - 1.5069 - 1.5 = 17.2378 GiB of KV cache; the
    # decoder's 2 x 4 layers x 20 heads x 64 x 2 B = 20,480 B per position: 903,759 positions, and each sequence
    # holds 448 tokens plus 1500 encoder states: 903,759 // 1948 = 463 sequences (max-num-seqs: vLLM's 256).
    # BGE-M3: 568e6 x 2 B = 1.0580 GiB; bidirectional attention caches nothing, so it fits, with vLLM's 256.
    site = variant("in-mh-pune", hosts=gpu_host("L4-24GB", 2),
                   models={"asr": model("whisper-large-v3-turbo", context=448, tensorParallel=1),
                           "emb": model("bge-m3", tensorParallel=1)})
    asr, emb = plan_site(site)
    assert asr.fits and asr.kv_bytes_per_token == 20_480
    assert asr.kv_cache_gib == pytest.approx(17.2378, abs=1e-3)
    assert asr.kv_tokens == pytest.approx(903_759, abs=2)
    assert (asr.concurrent_sequences, asr.max_num_seqs) == (463, 256)
    assert emb.fits and (emb.weights_gib, emb.kv_bytes_per_token) == (pytest.approx(1.0580, abs=1e-3), 0)
    assert (emb.kv_cache_gib, emb.kv_tokens, emb.max_num_seqs) == (0.0, 0, 256)
    assert emb.placement == ((("pune-ai-01", (1,)),),)


def test_an_encoder_on_cpu_gets_the_smallest_kv_space(variant):
    # br-ministerio-cpu: the reranker caches nothing; VLLM_CPU_KVCACHE_SPACE takes at least 1 GiB, and its
    # sequences are the CPU sizing's 4; RAM 1.0580 GiB of weights + 1 + 2 = 4.0580 GiB.
    site = variant("br-ministerio-cpu", models={"rerank": model("bge-reranker-v2-m3", replicas=2)})
    [plan] = plan_site(site)
    assert plan.fits and (plan.kv_cache_gib, plan.kv_tokens, plan.max_num_seqs) == (1.0, 0, 4)
    assert plan.memory_gib == pytest.approx(4.0580, abs=1e-3)
