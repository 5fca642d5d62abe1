#!/usr/bin/env python3
"""Writes the support-ticket classification dataset (train.jsonl, test.jsonl) from a fixed seed.

Five categories; each ticket combines an opening, a category-specific complaint built from
templates and slot values, and a closing. Regenerate with: python3 generate.py
"""
import json
import random

SEED = 20261124
CATEGORIES = {
    "billing": [
        "I was charged {n} times for my {plan} plan this month",
        "my invoice shows a refund of {amount} that never arrived",
        "the card ending {digits} was billed twice for order {order}",
        "why is there an extra fee of {amount} on my statement",
        "please cancel the duplicate payment for invoice {order}",
    ],
    "bug": [
        "the app crashes when I open the {screen} screen",
        "clicking save on the {screen} page shows error {code}",
        "the {screen} view freezes after the latest update",
        "export to {fmt} produces an empty file",
        "search returns nothing since version {version}",
    ],
    "account": [
        "I cannot log in, the password reset email never comes",
        "please change the email address on my account to a new one",
        "my account was locked after {n} failed sign in attempts",
        "how do I enable two factor authentication for my profile",
        "please delete my account and all my personal data",
    ],
    "feature_request": [
        "it would be great to have a dark mode for the {screen} screen",
        "could you add {fmt} export to the reports",
        "please support keyboard shortcuts in the {screen} editor",
        "we would love an API endpoint to list all {things}",
        "can you add a way to schedule {things} for later",
    ],
    "shipping": [
        "my package for order {order} has not arrived after {n} days",
        "the tracking number for order {order} does not work",
        "the box arrived damaged and the {item} is broken",
        "I received the wrong {item} in my delivery",
        "can I change the delivery address for order {order}",
    ],
}
SLOTS = {
    "n": ["two", "three", "four", "five"],
    "plan": ["basic", "pro", "team", "annual"],
    "amount": ["9.99", "24.50", "120", "3.75"],
    "digits": ["4821", "1177", "9034", "5550"],
    "order": ["A1042", "B7731", "C2290", "D5518", "E6603"],
    "screen": ["settings", "dashboard", "checkout", "profile", "calendar"],
    "code": ["500", "E42", "0x1F", "timeout"],
    "fmt": ["CSV", "PDF", "Excel", "JSON"],
    "version": ["2.3", "4.0.1", "5.2", "3.9"],
    "things": ["invoices", "projects", "reports", "messages"],
    "item": ["charger", "lamp", "headphones", "mug", "keyboard"],
}
OPENINGS = ["", "hello, ", "hi team, ", "urgent: ", "good morning, "]
CLOSINGS = ["", " thanks", " please help", " asap", " thank you"]


def ticket(rng, category):
    template = rng.choice(CATEGORIES[category])
    text = template.format(**{k: rng.choice(v) for k, v in SLOTS.items()})
    return rng.choice(OPENINGS) + text + rng.choice(CLOSINGS)


def write(path, rows):
    with open(path, "w") as f:
        for text, label in rows:
            f.write(json.dumps({"text": text, "label": label}) + "\n")


def main():
    rng = random.Random(SEED)
    labels = sorted(CATEGORIES)
    rows = [(ticket(rng, label), label) for _ in range(100) for label in labels]
    rng.shuffle(rows)
    write("train.jsonl", rows[:400])
    write("test.jsonl", rows[400:])


if __name__ == "__main__":
    main()
