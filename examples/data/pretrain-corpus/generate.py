#!/usr/bin/env python3
"""Writes the pretraining corpus for examples/models/kubetune-mini (train.jsonl, test.jsonl).

Simple English text of the kind the example fine-tuning tasks use: plain-style answers to support
questions (the same tasks as ../house-style, answered WITHOUT the house style), customer/agent
conversations built from the support-ticket templates (../support-tickets), product descriptions
and release notes. Records are `completion` format with an empty prompt, so the trainer learns on
every token. test.jsonl comes from a different seed: held-out text of the same kind.

Regenerate with: python3 generate.py   (writes about 1.6 MB; not committed, see examples/README.md)
"""
import importlib.util
import json
import os
import random

HERE = os.path.dirname(os.path.abspath(__file__))
TRAIN_SEED, TEST_SEED = 20261124, 777
TRAIN_RECORDS, TEST_RECORDS = 8000, 400


def load(name, folder):
    spec = importlib.util.spec_from_file_location(name, os.path.join(HERE, "..", folder, "generate.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


house = load("house_style", "house-style")
tickets = load("support_tickets", "support-tickets")

ANSWER_FORMS = [
    "To {t}, {s1}, {s2} and then {s3}.",
    "You can {t} in a minute: {s1}, {s2}, then {s3}.",
    "First {s1}. Then {s2}. Last, {s3}.",
    "{S1}, {s2} and {s3}. That is all you need to {t}.",
    "It is easy to {t}. Just {s1}, {s2} and {s3}.",
]
AGENT_REPLIES = {
    "billing": ["I am sorry about the charge. I have sent the refund and you will see it in {n} days.",
                "Thanks for telling us. The billing team will check the payment today.",
                "I can see the extra payment on your account. It is cancelled now."],
    "bug": ["Sorry about that. Our engineers know about the problem and a fix ships in version {version}.",
            "Thanks for the report. Could you send us a screenshot of the {screen} screen?",
            "Please update the app and restart it. That fixes the problem for most people."],
    "account": ["I have sent a new link to your email. It works for one hour.",
                "Your account is safe. I have unlocked it, please sign in again.",
                "Done. You will get an email from us in a few minutes."],
    "feature_request": ["Great idea! I have shared it with the product team.",
                        "Thanks for the idea. Many people asked for it and it is on our plan for next year.",
                        "We love feedback like this. I added your vote to the request."],
    "shipping": ["I am sorry the order is late. I checked order {order} and it will arrive in {n} days.",
                 "Sorry about the {item}. We will send you a new one today at no cost.",
                 "No problem. I have changed the address for order {order}."],
}
ADJECTIVES = ["small", "light", "quiet", "bright", "strong", "simple", "modern", "classic", "soft", "smart"]
MATERIALS = ["wood", "steel", "glass", "cotton", "plastic", "bamboo", "leather", "paper"]
COLORS = ["black", "white", "blue", "green", "red", "grey", "yellow"]
PRODUCTS = ["lamp", "mug", "keyboard", "charger", "headphones", "desk", "chair", "backpack", "bottle", "notebook"]
USES = ["for work", "for travel", "at home", "in the office", "for school", "in the kitchen"]
FEATURES = ["dark mode", "CSV export", "PDF export", "keyboard shortcuts", "a new calendar view",
            "faster search", "team folders", "scheduled reports", "an API for projects"]
FIXES = ["a crash on the settings screen", "slow search", "an error when saving", "broken links in emails",
         "a bug in the checkout page", "empty exports", "wrong dates in reports"]


def slots(rng):
    return {k: rng.choice(v) for k, v in tickets.SLOTS.items()}


def qa(rng):
    task, steps = rng.choice(house.TASKS)
    s1, s2, s3 = steps
    answer = rng.choice(ANSWER_FORMS).format(t=house.yours(task), s1=s1, s2=s2, s3=s3, S1=s1[0].upper() + s1[1:])
    return f"Q: {house.question(rng, task)}\nA: {answer}"


def conversation(rng):
    category = rng.choice(sorted(tickets.CATEGORIES))
    s = slots(rng)
    customer = rng.choice(tickets.OPENINGS) + rng.choice(tickets.CATEGORIES[category]).format(**s)
    agent = rng.choice(AGENT_REPLIES[category]).format(**s)
    text = f"Customer: {customer}\nAgent: {agent}"
    if rng.random() < 0.5:
        text += "\nCustomer: " + rng.choice(["thank you!", "great, thanks", "ok, that helps", "perfect, have a nice day"])
    return text


def product(rng):
    adj, item, material, color = rng.choice(ADJECTIVES), rng.choice(PRODUCTS), rng.choice(MATERIALS), rng.choice(COLORS)
    price = rng.choice(["9", "15", "24", "39", "49", "120"])
    days = rng.choice(["two", "three", "four", "five"])
    sentences = [f"The {adj} {item} is made of {material} and comes in {color}.",
                 f"It is a good choice {rng.choice(USES)}.",
                 f"It costs {price} dollars and ships in {days} days.",
                 rng.choice([f"Many customers buy it with a {rng.choice(PRODUCTS)}.",
                             "You can return it within thirty days.",
                             "It has a two year warranty."])]
    return " ".join(sentences[:2] + rng.sample(sentences[2:], 2))


def release_note(rng):
    version = rng.choice(tickets.SLOTS["version"])
    return (f"Version {version} is out today. It adds {rng.choice(FEATURES)} and fixes {rng.choice(FIXES)}. "
            + rng.choice(["Update the app to get it.", "Thanks to everyone who sent us feedback.",
                          "Tell us what you think."]))


KINDS = [(qa, 4), (conversation, 3), (product, 2), (release_note, 1)]


def record(rng):
    kind = rng.choices([k for k, _ in KINDS], weights=[w for _, w in KINDS])[0]
    return kind(rng)


def write(path, seed, n):
    rng = random.Random(seed)
    with open(path, "w") as f:
        for _ in range(n):
            f.write(json.dumps({"prompt": "", "completion": record(rng)}) + "\n")


def main():
    write(os.path.join(HERE, "train.jsonl"), TRAIN_SEED, TRAIN_RECORDS)
    write(os.path.join(HERE, "test.jsonl"), TEST_SEED, TEST_RECORDS)


if __name__ == "__main__":
    main()
