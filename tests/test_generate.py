"""Greedy generation, the one every scorer and the emulator's chat use."""

import torch

from helpers.eval import generate


def example(question, sql, db="company"):
    return {"db_id": db, "messages": [{"role": "system", "content": "schema"},
                                      {"role": "user", "content": question},
                                      {"role": "assistant", "content": sql}]}


def test_batched_generation_equals_single(embedded):
    model, tokenizer = embedded
    short = example("How many employees are there?", "")
    long = example("List the names of all employees hired after 2010 whose salary is above the "
                   "average salary of the employees in the Sales department.", "")
    side = tokenizer.padding_side
    alone = generate.replies(model, tokenizer, [short], max_new_tokens=16)
    batched = generate.replies(model, tokenizer, [long, short], max_new_tokens=16, batch_size=2)
    assert len(batched) == 2 and batched[1] == alone[0] and alone[0].strip()
    assert tokenizer.padding_side == side  # training after evaluation still pads as before


def test_prompt_tokens_count_what_the_model_reads(embedded):
    _, tokenizer = embedded
    short, long = example("How many?", "x"), example("How many employees were hired in 2015 in Berlin?", "x")
    counts = generate.prompt_tokens(tokenizer, [short, long])
    assert counts[0] == len(tokenizer(generate.prompt_text(tokenizer, short), add_special_tokens=False).input_ids)
    assert counts[1] > counts[0] > 5


def test_timed_requests_answer_as_the_batch_does(embedded):
    model, tokenizer = embedded
    rows = [example("How many employees are there?", "")]
    timed = generate.time_requests(model, tokenizer, rows, max_new_tokens=8)
    assert list(timed.columns) == ["seconds", "prompt_tokens", "reply_tokens"]
    batched = generate.greedy(model, tokenizer, [generate.prompt_text(tokenizer, rows[0])], max_new_tokens=8)
    assert timed.reply_tokens.tolist() == [len(batched[0])] and 1 <= len(batched[0]) <= 8
    assert timed.prompt_tokens[0] == generate.prompt_tokens(tokenizer, rows)[0] and timed.seconds[0] > 0


def test_each_reply_ends_at_its_first_end_token(embedded):
    model, tokenizer = embedded
    prompts = [generate.prompt_text(tokenizer, example(q, "")) for q in ("Say hi.", "Count from one to fifty in words.")]
    replies = generate.greedy(model, tokenizer, prompts, max_new_tokens=24)
    end = tokenizer.eos_token_id
    assert [end in r[:-1] for r in replies] == [False, False]  # nothing after the end: no padding kept
    assert replies[0][-1] == end and len(replies[1]) == 24  # a short answer stops, a long one is cut


def test_sampled_answers_are_read_back_only_for_the_same_model_and_settings(tiny_model_dir, tmp_path):
    from helpers import models

    model, tokenizer = models.load_model(str(tiny_model_dir))
    rows = [example("How many employees are there?", ""), example("Who earns most?", "")]
    first = generate.sampled(model, tokenizer, rows, 3, max_new_tokens=6, seed=1, cache=tmp_path)
    assert len(list(tmp_path.glob("sampled-*.json"))) == 1 and [len(answers) for answers in first] == [3, 3]

    def refuse(*args, **kwargs):
        raise AssertionError("sampled again although the same answers were saved")

    real_generate, model.generate = model.generate, refuse
    assert generate.sampled(model, tokenizer, rows, 3, max_new_tokens=6, seed=1, cache=tmp_path) == first
    model.generate = real_generate
    generate.sampled(model, tokenizer, rows, 3, max_new_tokens=6, seed=2, cache=tmp_path)  # another seed: sampled
    assert len(list(tmp_path.glob("sampled-*.json"))) == 2
    digest = models.weights_digest(model)
    with torch.no_grad():
        model.model.layers[0].self_attn.q_proj.weight[0, 0] += 1.0  # a trained model is another model
    assert models.weights_digest(model) != digest
    generate.sampled(model, tokenizer, rows, 3, max_new_tokens=6, seed=1, cache=tmp_path)
    assert len(list(tmp_path.glob("sampled-*.json"))) == 3
    assert models.weights_digest(models.load_model(str(tiny_model_dir))[0]) == digest  # another load, same digest
