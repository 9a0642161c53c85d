import HaatCore

/// A min-heap of (time, task) for tasks waiting out a backoff or a delayed start.
struct MinHeap {
  private var items: [(at: Int64, task: TaskID)] = []

  func peek() -> (at: Int64, task: TaskID)? { items.first }

  mutating func push(at: Int64, task: TaskID) {
    items.append((at, task))
    var child = items.count - 1
    while child > 0 {
      let parent = (child - 1) / 2
      guard items[child].at < items[parent].at else { break }
      items.swapAt(child, parent)
      child = parent
    }
  }

  @discardableResult
  mutating func pop() -> (at: Int64, task: TaskID)? {
    guard !items.isEmpty else { return nil }
    items.swapAt(0, items.count - 1)
    let top = items.removeLast()
    var parent = 0
    while true {
      let left = parent * 2 + 1
      let right = left + 1
      var smallest = parent
      if left < items.count, items[left].at < items[smallest].at { smallest = left }
      if right < items.count, items[right].at < items[smallest].at { smallest = right }
      guard smallest != parent else { break }
      items.swapAt(parent, smallest)
      parent = smallest
    }
    return top
  }
}
