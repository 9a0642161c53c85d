import ArgumentParser
print("haat")
