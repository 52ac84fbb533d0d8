"""Build the general questions: 40 short questions a small chat model should answer whatever it
was fine-tuned for, each with the words that make an answer right. They measure what a
fine-tune cost outside its task (helpers/eval/forgetting.py), so none of them is about SQL,
cooking, or the capitals, elements, sums and counts of the Quip persona.

    python data/general/generate.py            # rewrite the committed file
    python data/general/generate.py --out DIR  # write elsewhere (the tests compare bytes)

A reply is right when it contains one of the accepted words (whole words, any case) and none
of the rejected ones: "Is ice hot or cold?" is not answered by "hot or cold". Facts make up
most of the set; the rest ask the model to follow a short instruction. The reference answer is
the assistant message, so the file has the course's chat format.
"""

from __future__ import annotations

from pathlib import Path

from tools.generators import main, write_splits

SEED = 0  # the set is written by hand: nothing is drawn at random
HERE = Path(__file__).resolve().parent

# kind | question | accepted words (comma-separated) | rejected words | reference answer
QUESTIONS = """fact | Which planet is known as the Red Planet? | Mars | | Mars.
fact | Who wrote the play Romeo and Juliet? | Shakespeare | | William Shakespeare.
fact | What is the largest ocean on Earth? | Pacific | | The Pacific Ocean.
fact | What is frozen water called? | ice | | Ice.
fact | Which gas do plants take in from the air to make their food? | carbon dioxide, CO2, CO₂ | | Carbon dioxide.
fact | At what temperature in degrees Celsius does water boil at sea level? | 100 | | 100 degrees Celsius.
fact | What language do most people in Brazil speak? | Portuguese | | Portuguese.
fact | What is the fastest land animal? | cheetah | | The cheetah.
fact | What do you call a baby dog? | puppy | | A puppy.
fact | Which animal is known as the king of the jungle? | lion | | The lion.
fact | What is the largest planet in our solar system? | Jupiter | | Jupiter.
fact | Which star is at the center of our solar system? | Sun | | The Sun.
fact | Who painted the Mona Lisa? | Leonardo, da Vinci | | Leonardo da Vinci.
fact | What is the tallest mountain in the world? | Everest | | Mount Everest.
fact | What is the longest river in Africa? | Nile | | The Nile.
fact | Which organ pumps blood through the human body? | heart | | The heart.
fact | What does a caterpillar turn into? | butterfly, moth | | A butterfly or a moth.
fact | Which day of the week comes after Monday? | Tuesday | | Tuesday.
fact | Which season comes after winter? | spring | | Spring.
fact | Who was the first person to walk on the Moon? | Armstrong | | Neil Armstrong.
fact | What is the name of the galaxy we live in? | Milky Way | | The Milky Way.
fact | Which musical instrument has black and white keys? | piano | | The piano.
fact | What do you call a shape with four equal sides and four right angles? | square | | A square.
fact | Which animal has a long trunk? | elephant | | The elephant.
fact | What force pulls objects toward the ground? | gravity | | Gravity.
fact | Which bird is a symbol of peace? | dove | | The dove.
fact | What is the largest mammal on Earth? | blue whale | | The blue whale.
fact | What color is the sky on a clear day? | blue | | Blue.
language | What is the opposite of hot? | cold | | Cold.
language | What is the opposite of night? | day | | Day.
language | What is the plural of mouse? | mice | | Mice.
language | What is the past tense of the verb go? | went | | Went.
language | How do you say hello in Spanish? | hola | | Hola.
language | How do you say thank you in French? | merci | | Merci.
instruction | Repeat this word exactly once: umbrella | umbrella | | umbrella
instruction | Complete the saying: The early bird catches the | worm | | worm.
instruction | Give one word that rhymes with cat. | hat, bat, mat, rat, sat, fat, pat, flat, gnat, spat | | Hat.
instruction | Name one primary color. | red, blue, yellow | | Red.
instruction | Which of these is an animal: horse, chair or car? Answer with one word. | horse | chair, car | Horse.
instruction | Is ice hot or cold? Answer with one word. | cold | hot | Cold."""


def words(field: str) -> list[str]:
    return [w.strip() for w in field.split(",") if w.strip()]


def build() -> list[dict]:
    """The questions as chat examples, with what a right answer must (and must not) contain."""
    rows = []
    for line in QUESTIONS.splitlines():
        kind, question, accept, reject, reference = (part.strip() for part in line.split("|"))
        rows.append({"messages": [{"role": "user", "content": question},
                                  {"role": "assistant", "content": reference}],
                     "kind": kind, "accept": words(accept), "reject": words(reject)})
    return rows


def write_all(out: Path, seed: int = SEED) -> list[Path]:
    """Write test.jsonl into `out` (the set has no training split: it is only ever measured)."""
    return write_splits({"test": build()}, out)


if __name__ == "__main__":
    main(__doc__, write_all, HERE, SEED)
