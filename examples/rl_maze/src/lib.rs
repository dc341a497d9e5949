//! Your own environment: the maze of "Learning Ray" chapter 3 (the book the
//! seeds translate) — a seeker on a 5×5 grid starting in a corner, reward 1
//! on reaching the goal in the opposite corner, 0 otherwise — written as a
//! Rust type implementing `wray::rl::Env` and trained with PPO on env
//! runner actors, which build their copies with `make_maze`. Prints the
//! learned path.
//!
//! ```text
//! wray run rl_maze.wasm -- [--iterations 15] [--runners 2]
//! ```

use wray::Error;
use wray::rl::{Action, Env, PPOConfig, Space, Step, TimeLimit};

const SIZE: i32 = 5;
const GOAL: (i32, i32) = (SIZE - 1, SIZE - 1);

/// The maze: the seeker's cell.
struct Maze {
    seeker: (i32, i32),
}

impl Maze {
    fn observation(&self) -> Vec<f32> {
        // Where the seeker is, one-hot over the cells.
        let mut cells = vec![0.0; (SIZE * SIZE) as usize];
        cells[(self.seeker.0 * SIZE + self.seeker.1) as usize] = 1.0;
        cells
    }
}

impl Env for Maze {
    fn observation_space(&self) -> Space {
        Space::uniform_box((SIZE * SIZE) as usize, 0.0, 1.0)
    }

    /// Down, left, up, right.
    fn action_space(&self) -> Space {
        Space::Discrete(4)
    }

    fn reset(&mut self, _seed: Option<u64>) -> Vec<f32> {
        self.seeker = (0, 0);
        self.observation()
    }

    fn step(&mut self, action: &Action) -> Result<Step, Error> {
        let (row, col) = self.seeker;
        self.seeker = match action {
            Action::Discrete(0) => ((row + 1).min(SIZE - 1), col),
            Action::Discrete(1) => (row, (col - 1).max(0)),
            Action::Discrete(2) => ((row - 1).max(0), col),
            Action::Discrete(3) => (row, (col + 1).min(SIZE - 1)),
            other => return Err(self.action_space().outside(other)),
        };
        let at_goal = self.seeker == GOAL;
        Ok(Step {
            observation: self.observation(),
            reward: f64::from(u8::from(at_goal)),
            terminated: at_goal,
            truncated: false,
        })
    }

    fn render(&self) -> String {
        let mut rows = Vec::new();
        for r in 0..SIZE {
            let line: String = (0..SIZE)
                .map(|c| match (r, c) {
                    p if p == self.seeker => 'S',
                    p if p == GOAL => 'G',
                    _ => '.',
                })
                .collect();
            rows.push(line);
        }
        rows.join("\n") + "\n"
    }
}

/// Builds one maze for a runner (a plain `fn`: runners are other instances
/// of this component and call it by its table index).
fn make_maze() -> Box<dyn Env> {
    Box::new(TimeLimit::new(Maze { seeker: (0, 0) }, 100))
}

fn run(iterations: u64, runners: u32) -> Result<(), Error> {
    let mut algo = PPOConfig::new()
        .environment_fn("Maze", make_maze)
        .env_runners(runners)
        .train_batch_size(1000)
        .lr(1e-3)
        .gamma(0.9)
        .seed(0)
        .build()?;
    for _ in 0..iterations {
        let r = algo.train()?;
        println!(
            "iteration {}: episode length mean {:.1}, return mean {:.2}",
            r.training_iteration, r.episode_len_mean, r.episode_return_mean
        );
    }
    // The greedy policy's path: every cell the seeker visits, from the
    // rendered frames.
    let mut frames = Vec::new();
    let episodes = algo.rollout(1, 0, |env| frames.push(env.render()))?;
    let mut grid: Vec<Vec<char>> = frames[0].lines().map(|l| l.chars().collect()).collect();
    for frame in &frames {
        for (r, line) in frame.lines().enumerate() {
            if let Some(c) = line.find('S') {
                grid[r][c] = '*';
            }
        }
    }
    println!("greedy path:");
    for row in grid {
        println!("  {}", row.into_iter().collect::<String>());
    }
    println!("steps to the goal: {}", episodes[0].len);
    Ok(())
}

#[wray::main]
fn main(args: Vec<String>) -> Result<(), String> {
    let flag = |name: &str, default: u64| -> Result<u64, String> {
        match args.iter().position(|a| a == name) {
            Some(i) => args.get(i + 1).and_then(|v| v.parse().ok()).ok_or(format!("{name} needs a number")),
            None => Ok(default),
        }
    };
    run(flag("--iterations", 15)?, flag("--runners", 2)? as u32).map_err(|e| e.to_string())
}
