"""Write the shipped SB3 zips (agents/pretrained/*.zip) in the safe format (agents/pretrained/<name>/).

Read without unpickling (equirl.agents.io.read_sb3_zip); ``train_freq``, which an SB3 zip stores only
pickled, comes from the agent's metadata JSON. Checks that the converted agent gives the same Q-values.
Run from the repository root: ``python scripts/convert_pretrained.py``.
"""

import json
from pathlib import Path

import torch
from equirl.agents.io import load_agent, read_sb3_zip, save_agent

for z in sorted(Path("agents/pretrained").glob("*.zip")):
    hp = json.loads(z.with_suffix(".json").read_text())["hyperparams"]
    m = read_sb3_zip(z, device="cpu", train_freq=hp["train_freq"])
    save_agent(m, z.with_suffix(""), overwrite=True, training_state=False)
    loaded = load_agent(z.with_suffix(""), device="cpu")
    x = torch.as_tensor(m.observation_space.sample()[None].repeat(8, 0))
    assert torch.equal(m.q_net(x), loaded.q_net(x)), z
    print(f"{z} -> {z.with_suffix('')}/ (train_freq {loaded.train_freq.frequency}, Q-values identical)")
