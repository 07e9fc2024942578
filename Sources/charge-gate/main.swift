print("charge-gate")
