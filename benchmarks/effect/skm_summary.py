"""placeholder"""
def write():
    print("summary: pending")
