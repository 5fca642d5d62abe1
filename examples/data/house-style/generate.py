#!/usr/bin/env python3
"""Writes the house-style completion dataset (train.jsonl, test.jsonl) from a fixed seed.

Each record is a support question as `prompt` and an answer in the KubeTune house style as
`completion`: it opens with "Sure thing!", gives exactly three numbered steps, and signs off with
"-- The KubeTune Team". The completion starts with the separating space (prompt and completion are
tokenized separately). The plain-style answers to the same questions are part of the pretraining
corpus (../pretrain-corpus/generate.py imports TASKS from here), so the base model knows the
content and fine-tuning only has to teach the style. Held-out split: no prompt of test.jsonl
appears in train.jsonl. Regenerate with: python3 generate.py
"""
import json
import random

SEED = 20261124

# (what the customer asks for, in the first person; three steps, lower case, no final period)
TASKS = [
    ("reset my password", ["open the sign in page", "click forgot password", "follow the link in the email we send you"]),
    ("change the email address on my account", ["open the account page", "click edit next to your email", "confirm the new address from your inbox"]),
    ("enable two factor authentication", ["open the security settings", "choose authenticator app", "scan the code and enter the six digits"]),
    ("delete my account", ["open the account page", "click delete account at the bottom", "type your password to confirm"]),
    ("track my order", ["open the orders page", "pick the order you want to follow", "click track package"]),
    ("change the delivery address for my order", ["open the orders page", "click change address next to the order", "save the new address before the order ships"]),
    ("return a broken item", ["open the orders page", "click return next to the item", "print the label and drop the box at any post office"]),
    ("get a refund", ["open the billing page", "click request refund next to the payment", "pick a reason and send the request"]),
    ("cancel my subscription", ["open the billing page", "click cancel plan", "confirm when we ask you"]),
    ("upgrade to the pro plan", ["open the billing page", "click change plan", "pick pro and confirm the payment"]),
    ("download my invoices", ["open the billing page", "click invoices", "press download next to each month"]),
    ("update my card details", ["open the billing page", "click payment method", "enter the new card and press save"]),
    ("export a report to CSV", ["open the reports page", "pick the report", "click export and choose CSV"]),
    ("turn on dark mode", ["open the settings screen", "click appearance", "switch dark mode on"]),
    ("invite a teammate", ["open the team page", "click invite", "enter the email address of your teammate"]),
    ("remove a teammate", ["open the team page", "click the name of your teammate", "press remove from team"]),
    ("schedule a report", ["open the reports page", "click schedule next to the report", "pick a day and a time"]),
    ("change my username", ["open the profile page", "click edit next to your name", "type the new name and press save"]),
    ("turn off email notifications", ["open the settings screen", "click notifications", "switch email off"]),
    ("apply a discount code", ["go to the checkout page", "click add code", "type the code and press apply"]),
    ("change the language of the app", ["open the settings screen", "click language", "pick the language you want"]),
    ("create an API key", ["open the developer page", "click new key", "copy the key and keep it safe"]),
    ("restore a deleted project", ["open the projects page", "click trash", "press restore next to the project"]),
    ("share a dashboard", ["open the dashboard", "click share at the top", "enter the email addresses to share with"]),
    ("switch to annual billing", ["open the billing page", "click billing period", "pick annual and confirm"]),
    ("update the mobile app", ["open the app store on your phone", "search for our app", "press update"]),
    ("add a second shipping address", ["open the profile page", "click addresses", "press add address and save it"]),
    ("talk to a person on the phone", ["open the help page", "click contact us", "pick call me and leave your number"]),
]

QUESTIONS = [
    "How do I {t}?",
    "how can I {t}",
    "Can you tell me how to {t}?",
    "What is the best way to {t}?",
    "I want to {t}. What should I do?",
    "I need to {t}, can you help?",
    "Please explain how to {t}.",
    "Quick question: how do I {t}?",
]
OPENINGS = ["", "Hello! ", "Hi team, ", "Good morning. "]


def yours(task):
    """The task as the answer says it: 'reset my password' -> 'reset your password'."""
    return " ".join("your" if w == "my" else w for w in task.split())


def join(opening, question):
    """'Hi team, ' + 'How do I ...' -> 'Hi team, how do I ...'."""
    if opening.endswith(", ") and not question.startswith("I "):
        question = question[0].lower() + question[1:]
    return opening + question


def question(rng, task):
    return join(rng.choice(OPENINGS), rng.choice(QUESTIONS).format(t=task))


def house_style(task, steps):
    lines = [f" Sure thing! To {yours(task)}, follow these three steps:"]
    lines += [f"{i}. {s[0].upper() + s[1:]}." for i, s in enumerate(steps, 1)]
    lines += ["Anything else? Just reply to this message.", "-- The KubeTune Team"]
    return "\n".join(lines)


def write(path, rows):
    with open(path, "w") as f:
        for prompt, completion in rows:
            f.write(json.dumps({"prompt": prompt, "completion": completion}) + "\n")


def main():
    rng = random.Random(SEED)
    prompts = sorted({(join(o, q.format(t=task)), task) for task, _ in TASKS for q in QUESTIONS for o in OPENINGS})
    rng.shuffle(prompts)
    steps = dict(TASKS)
    rows = [(p, house_style(task, steps[task])) for p, task in prompts]
    n_test = len(rows) // 8
    write("test.jsonl", rows[:n_test])
    write("train.jsonl", rows[n_test:])


if __name__ == "__main__":
    main()
