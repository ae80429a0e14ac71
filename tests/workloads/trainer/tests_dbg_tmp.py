import time
def test_dbg(in_process):
    for rounds in (5, 8):
        for cfg in [{"compression": "none"}, {"compression": "topk", "topk-fraction": 0.02}, {"compression": "topk", "topk-fraction": 0.03}, {"compression": "topk", "topk-fraction": 0.05}]:
            t = time.time()
            run = in_process({"rounds": rounds, "task": "digits-large", **cfg})
            print("R", rounds, cfg, [round(r["global"]["accuracy"],4) for r in run.records], sum(r["uplink_payload_bytes"] for r in run.records), f"{time.time()-t:.1f}s", flush=True)
